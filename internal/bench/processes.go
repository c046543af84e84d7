package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/usherhq/usher/internal/store"
)

// Processes is the report's first page under Clients clients spread over
// two `usher serve` processes on one PostgreSQL database, as two replicas
// behind a load balancer run.
type Processes struct {
	Replicas // both processes together
	// PeakRSS is each process's peak resident memory (VmHWM), from its
	// start to the end of the load; 0 off Linux.
	PeakRSS [2]uint64
	CPU     [2]time.Duration // each process's CPU time, start to end of the load
	Ready   time.Duration    // from starting both to both answering /readyz
}

// serveReady is the longest a replica may take to answer /readyz.
const serveReady = 60 * time.Second

// measureProcesses starts two `usher serve` processes of the binary
// cfg.Usher on db's database and sends them the report's first page in turn
// from cfg.Clients clients for cfg.LoadFor. They are stopped on every way
// out.
func measureProcesses(ctx context.Context, db *store.DB, token string, cfg Config) (Processes, error) {
	return measureServes(ctx, db, token, cfg, 2)
}

// measureServe starts one `usher serve` process of the binary cfg.Usher on
// db's SQLite file, while the benchmark's own process keeps it open too,
// and sends it the report's first page from cfg.Clients clients for
// cfg.LoadFor: the resident memory of the server alone, without the
// benchmark's load generator and synthetic account, which the whole
// process's peak includes. Its figures are in PeakRSS[0] and CPU[0].
func measureServe(ctx context.Context, db *store.DB, token string, cfg Config) (Processes, error) {
	return measureServes(ctx, db, token, cfg, 1)
}

// measureServes runs n (1 or 2) `usher serve` processes on db's database
// under the report load, spread over them in turn.
func measureServes(ctx context.Context, db *store.DB, token string, cfg Config, n int) (Processes, error) {
	var r Processes
	start := time.Now()
	procs := make([]*serveProc, n)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for i := range procs {
		p, err := startServe(ctx, cfg.Usher, db.DSN())
		if err != nil {
			return r, fmt.Errorf("usher serve %d: %w", i+1, err)
		}
		procs[i] = p
	}
	bases := make([]string, n)
	for i, p := range procs {
		if err := p.waitReady(ctx, serveReady); err != nil {
			return r, fmt.Errorf("usher serve %d: %w", i+1, err)
		}
		bases[i] = p.base
	}
	r.Ready = time.Since(start)

	r.Replicas = reportOver(bases, token, cfg, "usher serve")
	for i, p := range procs {
		if err := p.alive(); err != nil {
			return r, fmt.Errorf("usher serve %d: %w", i+1, err)
		}
		r.PeakRSS[i] = processPeakRSS(p.cmd.Process.Pid)
		r.CPU[i], _ = processCPU(p.cmd.Process.Pid) // 0 off Linux
	}
	return r, nil
}

// serveProc is one running `usher serve`.
type serveProc struct {
	cmd    *exec.Cmd
	base   string
	stderr *tailBuffer
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

// startServe runs `usher serve` from binary on a free loopback port with
// the database dsn. The environment's USHER_ variables are left out, so
// that no SMTP server or clock of the benchmark's caller reaches it, and
// the database URL goes in USHER_DB rather than on the command line, where
// any user of the machine could read its password.
func startServe(ctx context.Context, binary, dsn string) (*serveProc, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USHER_") {
			env = append(env, kv)
		}
	}
	env = append(env, "USHER_DB="+dsn)
	// Warnings only: a log line per request would measure the logger. The
	// scheduler's interval is long so that its passes stay out of the
	// measured 30 s; its first pass runs at start, before the load.
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", addr, "--log-level", "warn", "--scheduler-interval", "1h")
	cmd.Env = env
	p := &serveProc{cmd: cmd, base: "http://" + addr, stderr: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.WaitDelay = 5 * time.Second
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// freeLoopbackAddr finds a loopback port nobody listens on. Another program could
// take it before usher serve does; the replica would then exit, which
// waitReady reports.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls GET /readyz until it answers 200.
func (p *serveProc) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", p.base+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := p.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s/readyz within %v; its output: %s", p.base, within, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive is nil while the process runs.
func (p *serveProc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("exited early (%v); its output: %s", p.err, p.stderr)
	default:
		return nil
	}
}

// stop asks the process to shut down (SIGTERM), and kills it if it has not
// within 10 s. A nil p is fine.
func (p *serveProc) stop() {
	if p == nil {
		return
	}
	if p.alive() != nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if extra := t.b.Len() - t.max; extra > 0 {
		t.b.Next(extra)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.b.String())
}
