package bench

import (
	"fmt"
	"strings"
)

// rowFunc prints one measure of the usage table.
type rowFunc func(name, goal string, cell func(r Result) string)

// writeProcesses prints the two `usher serve` processes' rows, if any
// result has them; SQLite's cell says it does not run them.
func writeProcesses(results []Result, row rowFunc, mark func(bool) string) {
	ran := false
	for _, r := range results {
		ran = ran || r.Processes.Requests > 0
	}
	if !ran {
		return
	}
	c := results[0].Config
	cell := func(f func(x Processes, r Result) string) func(r Result) string {
		return func(r Result) string {
			if r.Processes.Requests == 0 {
				return "— (one process)"
			}
			return f(r.Processes, r)
		}
	}
	row(fmt.Sprintf("%d clients over two `usher serve` processes (one PostgreSQL), report page: requests/s together, p50 / p99; errors", c.Clients), "0 errors",
		cell(func(x Processes, _ Result) string {
			s := fmt.Sprintf("%.0f, %s / %s; %d of %d %s", x.RPS, ms(x.P50), ms(x.P99), x.Errors, x.Requests, mark(x.Errors == 0))
			if x.ErrorText != "" {
				s += " (" + x.ErrorText + ")"
			}
			return s
		}))
	row("… ÷ the report's bare SQL at the same concurrency (one pool)", "", cell(func(x Processes, r Result) string {
		for _, l := range r.Load {
			if strings.HasPrefix(l.Path, "/api/v1/reports/usage") && l.SQLRPS > 0 {
				return fmt.Sprintf("%.2f", x.RPS/l.SQLRPS)
			}
		}
		return ""
	}))
	row("`usher serve` resident memory, peak of each process (VmHWM); CPU of each", fmt.Sprintf("≤ %d MiB", goalRSSMiB), cell(func(x Processes, _ Result) string {
		a, b := float64(x.PeakRSS[0])/(1<<20), float64(x.PeakRSS[1])/(1<<20)
		ok := x.PeakRSS[0] > 0 && x.PeakRSS[1] > 0 && a <= goalRSSMiB && b <= goalRSSMiB
		return fmt.Sprintf("%.0f / %.0f MiB %s; %.1f / %.1f s", a, b, mark(ok), x.CPU[0].Seconds(), x.CPU[1].Seconds())
	}))
}

// writeSCIM prints the SCIM provisioning rows, if any result has them.
func writeSCIM(results []Result, row rowFunc) {
	c := results[0].Config
	ran := false
	for _, r := range results {
		ran = ran || r.SCIM.Users > 0
	}
	if !ran {
		return
	}
	n := results[0].SCIM.Users
	row(fmt.Sprintf("SCIM: %d users into a group (GET by userName + POST each, %d at once; then PATCH %d members at a time), users/s", n, c.SCIMSenders, c.SCIMBatch), "",
		func(r Result) string {
			x := r.SCIM
			return fmt.Sprintf("%.0f (%d requests in %.1f s)", x.HTTPRate(), x.Requests, x.HTTP().Seconds())
		})
	row("… creating users, users/s; adding members, members/s", "", func(r Result) string {
		return fmt.Sprintf("%.0f; %.0f", r.SCIM.CreateRate(), r.SCIM.PatchRate())
	})
	row("plain SQL of the same rows (users + memberships, one transaction), users/s", "", func(r Result) string {
		return fmt.Sprintf("%.0f", r.SCIM.BaselineRate())
	})
	row("SCIM ÷ plain SQL", "", func(r Result) string { return fmt.Sprintf("%.3f", r.SCIM.Ratio()) })
	row("group members afterwards (SCIM / plain SQL)", fmt.Sprintf("%d / %d", n, n), func(r Result) string {
		x := r.SCIM
		ok := "✓"
		if !x.ok(x.Users) {
			ok = "✗"
		}
		return fmt.Sprintf("%d / %d %s", x.Members, x.BaselineMembers, ok)
	})
}

// writeServe prints the row of one `usher serve` process on the SQLite
// file, if any result has it; PostgreSQL's cell points to its two
// processes.
func writeServe(results []Result, row rowFunc, mark func(bool) string) {
	ran := false
	for _, r := range results {
		ran = ran || r.Serve.Requests > 0
	}
	if !ran {
		return
	}
	c := results[0].Config
	row(fmt.Sprintf("%d clients on one `usher serve` process (the SQLite file), report page: requests/s, p50 / p99; errors; resident memory, peak (VmHWM); CPU", c.Clients),
		fmt.Sprintf("0 errors, ≤ %d MiB", goalRSSMiB), func(r Result) string {
			x := r.Serve
			if x.Requests == 0 {
				return "— (two processes above)"
			}
			mib := float64(x.PeakRSS[0]) / (1 << 20)
			s := fmt.Sprintf("%.0f, %s / %s; %d of %d %s; %.0f MiB %s; %.1f s", x.RPS, ms(x.P50), ms(x.P99), x.Errors, x.Requests, mark(x.Errors == 0),
				mib, mark(x.PeakRSS[0] > 0 && mib <= goalRSSMiB), x.CPU[0].Seconds())
			if x.ErrorText != "" {
				s += " (" + x.ErrorText + ")"
			}
			return s
		})
}
