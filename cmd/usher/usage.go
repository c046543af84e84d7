package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

const usageHelp = `Usage: usher usage <command> [flags]

Commands:
  import   import usage events from a CSV or NDJSON file

Run "usher usage <command> --help" for its flags.
`

const usageImportHelp = `Usage: usher usage import [flags] FILE

Imports usage events into an account, straight into the database (no server
needed), the same way POST /api/v1/usage-events does: good lines are stored,
bad ones are listed with their line number and reason, and importing the
same file again stores nothing new. FILE is read as it goes, so any size
works; "-" reads standard input.

Formats, from the file name unless --format is given:
  .csv            a header line naming user, product and at; one event per line
  .ndjson .jsonl  one {"user":…,"product":…,"at":…} object per line
  .json           one JSON array of such objects
user is an email address, product a product code, at an RFC 3339 time such
as 2026-03-01T09:30:00Z.

Flags:
  --account ID|NAME   the account to import into; may be left out when there
                      is only one
  --format F          csv, ndjson or json (default: from FILE's extension)
  --json              print the summary as JSON, as the API answers it
` + dbFlagHelp + `  -h, --help          show this help

While it runs, a progress bar is drawn on standard error when that is a
terminal, else a progress line is written every few seconds. The summary goes
to standard output. The exit status is 0 when every line was stored (or was
already), 1 when some lines were rejected or the import failed.

Example:
  usher usage import --account "Acme Ltd" usage-2026-03.csv
`

func runUsage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, usageErrorf("usage: missing subcommand: import (see usher usage --help)"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageHelp)
		return exitOK
	}
	c, ok := findCommand("usage " + args[0])
	if !ok {
		return fail(stderr, usageErrorf("usage: unknown subcommand %q: want import", args[0]))
	}
	return fail(stderr, c.run(ctx, args[1:], stdout, stderr))
}

func runUsageImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("usage import")
	account := fs.String("account", "", "account id or name")
	format := fs.String("format", "", "csv, ndjson or json")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	dsn := dbFlag(fs)
	// FILE may come before, between or after the flags.
	flags, files := splitArgs(args, map[string]bool{"account": true, "format": true, "db": true})
	if err := parse(fs, usageImportHelp, flags, stdout, map[string]string{"db": "USHER_DB"}); err != nil {
		return err
	}
	switch len(files) {
	case 0:
		return usageErrorf("usage import: FILE is missing (see usher usage import --help)")
	case 1:
	default:
		return usageErrorf("usage import: one FILE at a time; got %q", files)
	}
	file := files[0]
	f, err := importFormat(*format, file)
	if err != nil {
		return err
	}

	var in io.Reader
	var size int64 = -1
	if file == "-" {
		in = os.Stdin
	} else {
		fh, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("usage import: %w", err)
		}
		defer fh.Close()
		if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = fh
	}

	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	acct, err := findAccount(ctx, access.New(db.Access(), nil), *account)
	if err != nil {
		return err
	}

	counted := &countingReader{r: in}
	p := newProgress(stderr, size)
	use := usage.New(db.Usage(), usage.Config{})
	// Whoever runs the CLI has the database itself: they act as the system.
	res, err := use.Ingest(ctx, usher.System(acct.ID), p.track(counted, usage.Decode(counted, f)))
	p.done(counted.n)
	if err != nil {
		return fmt.Errorf("usage import %s: %w", file, err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printSummary(stdout, file, acct, res)
	}
	if res.Rejected > 0 {
		return fmt.Errorf("usage import %s: %d %s rejected", file, res.Rejected, plural(res.Rejected, "line", "lines"))
	}
	return nil
}

// splitArgs separates flags (with the values of the flags named in valued)
// from positional arguments, which the flag package would stop at.
func splitArgs(args []string, valued map[string]bool) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(positional, args[i+1:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if name := strings.TrimLeft(a, "-"); valued[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	return flags, positional
}

// importFormat picks the format from --format or the file name.
func importFormat(flag, file string) (usage.Format, error) {
	if flag != "" {
		switch f := usage.Format(strings.ToLower(flag)); f {
		case usage.FormatCSV, usage.FormatNDJSON, usage.FormatJSON:
			return f, nil
		}
		return "", usageErrorf("usage import: --format %q: want csv, ndjson or json", flag)
	}
	if f, ok := usage.FormatFor(filepath.Ext(file)); ok && file != "-" {
		return f, nil
	}
	return "", usageErrorf("usage import: cannot tell the format of %q from its name: give --format csv, ndjson or json", file)
}

// findAccount resolves --account as an id or a name; empty means the only one.
func findAccount(ctx context.Context, svc *access.Service, want string) (usher.Account, error) {
	accounts, err := svc.ListAccounts(ctx)
	if err != nil {
		return usher.Account{}, err
	}
	if want == "" {
		switch len(accounts) {
		case 1:
			return accounts[0], nil
		case 0:
			return usher.Account{}, usageErrorf(`usage import: there is no account yet; create one with "usher account create"`)
		}
		return usher.Account{}, usageErrorf("usage import: --account is required: there are %d accounts (see usher account list)", len(accounts))
	}
	id, _ := strconv.ParseInt(want, 10, 64)
	for _, a := range accounts {
		if a.ID == id || a.Name == want {
			return a, nil
		}
	}
	return usher.Account{}, usageErrorf("usage import: --account %q: no account has this id or name (see usher account list)", want)
}

func printSummary(w io.Writer, file string, acct usher.Account, res usage.IngestResult) {
	if file == "-" {
		file = "standard input"
	}
	fmt.Fprintf(w, "Imported %s into account %d %q: %d accepted, %d %s, %d rejected.\n",
		file, acct.ID, acct.Name, res.Accepted, res.Duplicates, plural(res.Duplicates, "duplicate", "duplicates"), res.Rejected)
	if len(res.Rejections) == 0 {
		return
	}
	fmt.Fprintln(w, "Rejected:")
	for _, r := range res.Rejections {
		if r.Line > 0 {
			fmt.Fprintf(w, "  line %d: %s\n", r.Line, r.Reason)
		} else {
			fmt.Fprintf(w, "  %s\n", r.Reason)
		}
	}
	if more := res.Rejected - len(res.Rejections); more > 0 {
		fmt.Fprintf(w, "  … and %d more (only the first %d are listed)\n", more, usage.MaxRejections)
	}
}

// plural picks the word for n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progress reports how far an import has read. It is driven by the items
// as they are decoded, so it needs no goroutine of its own.
type progress struct {
	w        io.Writer
	terminal bool
	size     int64 // -1 when unknown (standard input)
	lines    int
	last     time.Time
	every    time.Duration
	drawn    bool
}

func newProgress(w io.Writer, size int64) *progress {
	p := &progress{w: w, size: size, terminal: isTerminal(w), every: 5 * time.Second, last: time.Now()}
	if p.terminal {
		p.every = 100 * time.Millisecond
	}
	return p
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) track(r *countingReader, items iter.Seq[usage.Item]) iter.Seq[usage.Item] {
	return func(yield func(usage.Item) bool) {
		for it := range items {
			p.lines++
			if now := time.Now(); now.Sub(p.last) >= p.every {
				p.last = now
				p.draw(r.n)
			}
			if !yield(it) {
				return
			}
		}
	}
}

func (p *progress) draw(read int64) {
	mb := func(n int64) string { return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) }
	p.drawn = true
	if !p.terminal {
		if p.size > 0 {
			fmt.Fprintf(p.w, "usage import: read %s of %s MB (%d%%), %d events\n", mb(read), mb(p.size), read*100/p.size, p.lines)
		} else {
			fmt.Fprintf(p.w, "usage import: read %s MB, %d events\n", mb(read), p.lines)
		}
		return
	}
	if p.size <= 0 {
		fmt.Fprintf(p.w, "\r%s MB, %d events ", mb(read), p.lines)
		return
	}
	const width = 30
	frac := min(float64(read)/float64(p.size), 1)
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3d%%  %s/%s MB  %d events ",
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), int(frac*100), mb(read), mb(p.size), p.lines)
}

// done draws the final state and ends the bar's line.
func (p *progress) done(read int64) {
	if p.terminal {
		p.draw(read)
		fmt.Fprintln(p.w)
	} else if p.drawn {
		p.draw(read) // the last line says 100%
	}
}
