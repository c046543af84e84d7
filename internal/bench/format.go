package bench

import (
	"fmt"
	"io"
	"time"
)

// Goals of the usage and performance issues, checked in the table Write
// prints.
const (
	goalIngestRatio  = 0.6
	goalRollupPerEvt = 0.05
	goalReportP99    = 25 * time.Millisecond
	goalReportVsSQL  = 1.5
	goalExportRatio  = 0.5
	goalRSSMiB       = 256 // usher serve's resident memory, at any scale
)

// Write prints results as a Markdown table, one column per engine, with
// each goal and whether it was met.
func Write(w io.Writer, results []Result) error {
	if len(results) == 0 {
		return nil
	}
	c := results[0].Config
	p := &printer{w: w}
	p.printf("Synthetic account: %d users, %d seats on 5 products, %d usage events over %d days (%d events per user-day of use); ingest in NDJSON batches of %d, %d in flight.\n\n",
		c.Users, c.Seats, c.Events, c.Days, c.EventsPerUseDay, c.Batch, c.Senders)
	engines := make([]string, len(results))
	for i, r := range results {
		engines[i] = r.Engine
	}
	p.tableHead(engines)
	row := func(name, goal string, cell func(r Result) string) { tableRow(p, results, name, goal, cell) }
	mark := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	row("ingest via HTTP, events/s", "", func(r Result) string { return fmt.Sprintf("%.0f", r.Ingest.HTTPRate()) })
	row("raw bulk load, events/s", "", func(r Result) string { return fmt.Sprintf("%.0f", r.Ingest.RawRate()) })
	row("ingest ÷ raw", fmt.Sprintf("≥ %g", goalIngestRatio), func(r Result) string {
		return fmt.Sprintf("%.2f %s", r.Ingest.Ratio(), mark(r.Ingest.Ratio() >= goalIngestRatio))
	})
	row("rollup writes per event", fmt.Sprintf("≤ %.2f", goalRollupPerEvt), func(r Result) string {
		x := r.Ingest.RollupWritesPerEvent()
		return fmt.Sprintf("%.3f %s", x, mark(x <= goalRollupPerEvt))
	})
	row("report page p50 / p99 (HTTP)", fmt.Sprintf("p99 ≤ %v", goalReportP99), func(r Result) string {
		return fmt.Sprintf("%s / %s %s", ms(r.Report.HTTPP50), ms(r.Report.HTTPP99), mark(r.Report.HTTPP99 <= goalReportP99))
	})
	row("bare SQL p50 / p99", "", func(r Result) string { return fmt.Sprintf("%s / %s", ms(r.Report.SQLP50), ms(r.Report.SQLP99)) })
	row("report p99 ÷ bare SQL p99", fmt.Sprintf("≤ %g", goalReportVsSQL), func(r Result) string {
		x := float64(r.Report.HTTPP99) / float64(max(r.Report.SQLP99, 1))
		return fmt.Sprintf("%.2f %s", x, mark(x <= goalReportVsSQL))
	})
	row("CSV export, rows/s", "", func(r Result) string { return fmt.Sprintf("%.0f (%d rows)", r.Export.HTTPRate(), r.Export.Rows) })
	row("baseline export, rows/s", "", func(r Result) string { return fmt.Sprintf("%.0f", r.Export.BaselineRate()) })
	row("export ÷ baseline", fmt.Sprintf("≥ %.1f", goalExportRatio), func(r Result) string {
		return fmt.Sprintf("%.2f %s", r.Export.Ratio(), mark(r.Export.Ratio() >= goalExportRatio))
	})
	row("dashboard p50 / p99 (HTTP, counts cached)", fmt.Sprintf("p99 ≤ %v", goalDashboardP99), func(r Result) string {
		return fmt.Sprintf("%s / %s %s", ms(r.Dashboard.HTTPP50), ms(r.Dashboard.HTTPP99), mark(r.Dashboard.HTTPP99 <= goalDashboardP99))
	})
	row("dashboard after a change p50 / p99 (HTTP, counted)", fmt.Sprintf("p99 ≤ %v", goalDashboardP99), func(r Result) string {
		return fmt.Sprintf("%s / %s %s", ms(r.Dashboard.ColdP50), ms(r.Dashboard.ColdP99), mark(r.Dashboard.ColdP99 <= goalDashboardP99))
	})
	row("dashboard bare SQL p50 / p99", "", func(r Result) string {
		return fmt.Sprintf("%s / %s", ms(r.Dashboard.SQLP50), ms(r.Dashboard.SQLP99))
	})
	row("dashboard after a change p99 ÷ bare SQL p99", "", func(r Result) string {
		return fmt.Sprintf("%.2f", float64(r.Dashboard.ColdP99)/float64(max(r.Dashboard.SQLP99, 1)))
	})
	for i := range maxLoads(results) {
		load := func(r Result) (Load, bool) {
			if i < len(r.Load) {
				return r.Load[i], true
			}
			return Load{}, false
		}
		var name string
		for _, r := range results {
			if l, ok := load(r); ok {
				name = l.Path
			}
		}
		row(fmt.Sprintf("%d clients, `GET %s`: requests/s, p50 / p99", c.Clients, name), fmt.Sprintf("p99 ≤ %v", goalLoadP99), func(r Result) string {
			l, ok := load(r)
			if !ok {
				return ""
			}
			return fmt.Sprintf("%.0f, %s / %s %s", l.RPS, ms(l.P50), ms(l.P99), mark(l.P99 <= goalLoadP99))
		})
		row("… its bare SQL at the same concurrency: queries/s, p50 / p99", "", func(r Result) string {
			l, ok := load(r)
			if !ok {
				return ""
			}
			return fmt.Sprintf("%.0f, %s / %s", l.SQLRPS, ms(l.SQLP50), ms(l.SQLP99))
		})
		row("… throughput ÷ bare SQL; errors", fmt.Sprintf("≥ %.1f; 0", goalLoadRatio), func(r Result) string {
			l, ok := load(r)
			if !ok {
				return ""
			}
			s := fmt.Sprintf("%.2f %s; %d of %d", l.Ratio(), mark(l.Ratio() >= goalLoadRatio), l.Errors, l.Requests)
			if l.ErrorText != "" {
				s += " (" + l.ErrorText + ")"
			}
			return s
		})
	}
	if c.Clients > 0 {
		row(fmt.Sprintf("%d clients over two servers (own pools, one database), report page: requests/s together, p50 / p99; errors", c.Clients), "0 errors", func(r Result) string {
			x := r.Replicas
			s := fmt.Sprintf("%.0f, %s / %s; %d of %d %s", x.RPS, ms(x.P50), ms(x.P99), x.Errors, x.Requests, mark(x.Errors == 0 && x.Requests > 0))
			if x.ErrorText != "" {
				s += " (" + x.ErrorText + ")"
			}
			return s
		})
	}
	writeProcesses(results, row, mark)
	writeServe(results, row, mark)
	writeSCIM(results, row)
	row("heap growth during export", "flat", func(r Result) string { return fmt.Sprintf("%.1f MiB", float64(r.Export.PeakHeapBytes)/(1<<20)) })
	row("live heap growth during export (after GC)", "flat", func(r Result) string {
		return fmt.Sprintf("%.1f MiB (%d GCs)", float64(r.Export.PeakLiveHeapBytes)/(1<<20), r.Export.GCs)
	})
	// The goal of 256 MiB is usher serve's, marked on its lines above; this
	// process also holds the load generator, the SCIM client and the
	// synthetic account, so its figure is given without a mark.
	row("resident memory of the benchmark process (servers, load generator and clients in one), peak", "", func(r Result) string {
		return fmt.Sprintf("%.0f MiB", float64(r.PeakRSS)/(1<<20))
	})
	p.printf("\nBaselines: ")
	for i, r := range results {
		if i > 0 {
			p.printf("; ")
		}
		p.printf("%s ingest: %s, export: %s", r.Engine, r.Ingest.RawMethod, r.Export.BaselineKind)
		if r.SCIM.BaselineMethod != "" {
			p.printf(", SCIM: %s", r.SCIM.BaselineMethod)
		}
	}
	p.printf(".\n")
	return p.err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// tableHead starts a Markdown table with a column per engine.
func (p *printer) tableHead(engines []string) {
	p.printf("| measure | goal |")
	for _, e := range engines {
		p.printf(" %s |", e)
	}
	p.printf("\n|---|---|")
	for range engines {
		p.printf("---|")
	}
	p.printf("\n")
}

// tableRow prints one measure with a cell per engine's result.
func tableRow[R any](p *printer, results []R, name, goal string, cell func(R) string) {
	p.printf("| %s | %s |", name, goal)
	for _, r := range results {
		p.printf(" %s |", cell(r))
	}
	p.printf("\n")
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func maxLoads(results []Result) int {
	n := 0
	for _, r := range results {
		n = max(n, len(r.Load))
	}
	return n
}
