package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// sinkPython is the interpreter with aiosmtpd: Debian's, not whichever
// python3 comes first on PATH.
const sinkPython = "/usr/bin/python3"

// sinkKind names the SMTP server the notification benchmark sends to.
const sinkKind = "aiosmtpd (Python, one process) storing each message in a Maildir"

// sink is a real SMTP server on loopback that stores every message it
// accepts in a Maildir, so the benchmark can count what arrived. Usher did
// not write it: a mock would agree with whatever the client does.
type sink struct {
	addr    string
	maildir string
	cmd     *exec.Cmd
	done    chan struct{}
	out     *bytes.Buffer
}

// startSink runs aiosmtpd with its Mailbox handler on a free loopback port,
// storing into dir/maildir. stop must be called.
func startSink(dir string) (*sink, error) {
	if err := exec.Command(sinkPython, "-c", "import aiosmtpd").Run(); err != nil {
		return nil, fmt.Errorf("SMTP sink: aiosmtpd is not available to %s (%w); install it with: apt-get install -y python3-aiosmtpd", sinkPython, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("SMTP sink: %w", err)
	}
	s := &sink{
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		maildir: filepath.Join(dir, "maildir"),
		done:    make(chan struct{}),
		out:     &bytes.Buffer{},
	}
	s.cmd = exec.Command(sinkPython, "-m", "aiosmtpd", "-n", "-l", s.addr, "-c", "aiosmtpd.handlers.Mailbox", s.maildir)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("SMTP sink: start aiosmtpd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("SMTP sink: aiosmtpd exited at start: %s", s.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("SMTP sink: aiosmtpd did not listen on %s within 15s: %s", s.addr, s.out)
		}
	}
}

// stop kills the server and waits for it to exit.
func (s *sink) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// files lists the messages stored so far. The Mailbox handler writes a
// message into the Maildir before it answers 250 to DATA, so once a client
// has been told "accepted", its message is here.
func (s *sink) files() (map[string]bool, error) {
	out := map[string]bool{}
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(s.maildir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("SMTP sink: read Maildir: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				out[filepath.Join(s.maildir, sub, e.Name())] = true
			}
		}
	}
	return out, nil
}

// cpu is the CPU time the server has used so far; zero if unknown.
func (s *sink) cpu() time.Duration {
	d, err := processCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return d
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
