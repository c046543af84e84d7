package bench

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// sinkBinary is Postfix's smtp-sink (Debian's postfix package): a C
// server built to measure SMTP clients, so the benchmark's ratio measures
// Usher rather than the sink. An earlier Python sink was the bottleneck of
// both paths.
const sinkBinary = "/usr/sbin/smtp-sink"

// sinkKind names the SMTP server the notification benchmark sends to.
const sinkKind = "Postfix smtp-sink (C, one process) dumping each message to its own file"

// sink is a real SMTP server on loopback that writes every message it
// accepts to a file of its own, so the benchmark can count what arrived.
// Usher did not write it: a mock would agree with whatever the client does.
type sink struct {
	addr    string
	maildir string
	cmd     *exec.Cmd
	done    chan struct{}
	out     *bytes.Buffer
}

// startSink runs smtp-sink on a free loopback port, dumping each message
// into dir/maildir. stop must be called.
func startSink(dir string) (*sink, error) {
	if _, err := os.Stat(sinkBinary); err != nil {
		return nil, fmt.Errorf("SMTP sink: %s is missing (%w); install it with: apt-get install -y postfix", sinkBinary, err)
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
	// smtp-sink run as root must drop to another user (-u), who then
	// writes the dump files; the directory is open to it.
	if err := os.MkdirAll(s.maildir, 0o777); err != nil {
		return nil, fmt.Errorf("SMTP sink: %w", err)
	}
	if err := os.Chmod(s.maildir, 0o777); err != nil {
		return nil, fmt.Errorf("SMTP sink: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("SMTP sink: %w", err)
	}
	// -d names each dump file by the template plus a random suffix and
	// never reuses a name; the file is complete before "." is answered.
	args := []string{"-d", filepath.Join(s.maildir, "msg."), "-m", "1024"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, s.addr, "1024")
	s.cmd = exec.Command(sinkBinary, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("SMTP sink: start smtp-sink: %w", err)
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
			return nil, fmt.Errorf("SMTP sink: smtp-sink exited at start: %s", s.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("SMTP sink: smtp-sink did not listen on %s within 15s: %s", s.addr, s.out)
		}
	}
}

// stop kills the server and waits for it to exit.
func (s *sink) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// files lists the messages stored so far. smtp-sink writes a message's
// file before it answers 250 to the final ".", so once a client has been
// told "accepted", its message is here.
func (s *sink) files() (map[string]bool, error) {
	out := map[string]bool{}
	entries, err := os.ReadDir(s.maildir)
	if err != nil {
		return nil, fmt.Errorf("SMTP sink: read dump directory: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			out[filepath.Join(s.maildir, e.Name())] = true
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
