// Package smtptest runs a real SMTP server for tests: Debian's aiosmtpd,
// storing every message it accepts in a Maildir. Usher did not write it, so
// tests against it check what other servers will see.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Python is the interpreter with aiosmtpd; Debian's, not whichever python3
// comes first on PATH.
const Python = "/usr/bin/python3"

// Install is the command that installs aiosmtpd.
const Install = "apt-get update && apt-get install -y python3-aiosmtpd"

// TLS selects how the server protects connections.
type TLS int

const (
	NoTLS       TLS = iota // clear text only
	StartTLS               // STARTTLS offered and required before MAIL
	ImplicitTLS            // TLS from the first byte (SMTPS)
)

// Server is a running aiosmtpd.
type Server struct {
	Addr    string // host:port
	Mailbox string // the Maildir messages go to

	t    testing.TB
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// Start runs a clear-text server for the test and returns its address and
// Maildir. It stops when the test ends.
func Start(t testing.TB) (addr, mailbox string) {
	t.Helper()
	s := StartServer(t, NoTLS)
	return s.Addr, s.Mailbox
}

// StartServer runs a server with the given TLS mode, on a self-signed
// certificate for 127.0.0.1 when it has one (clients need
// insecure_skip_verify). It stops when the test ends.
func StartServer(t testing.TB, mode TLS) *Server {
	t.Helper()
	if err := exec.Command(Python, "-c", "import aiosmtpd").Run(); err != nil {
		t.Fatalf("aiosmtpd is not available to %s (%v); install it with: %s", Python, err, Install)
	}
	dir := t.TempDir()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), Mailbox: filepath.Join(dir, "maildir"), t: t}
	s.args = []string{"-m", "aiosmtpd", "-n", "-l", s.Addr, "-c", "aiosmtpd.handlers.Mailbox"}
	if mode != NoTLS {
		cert, key := selfSigned(t, dir)
		if mode == StartTLS {
			s.args = append(s.args, "--tlscert", cert, "--tlskey", key)
		} else {
			s.args = append(s.args, "--smtpscert", cert, "--smtpskey", key)
		}
	}
	s.args = append(s.args, s.Mailbox)
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// authScript runs aiosmtpd requiring AUTH (PLAIN, LOGIN) with one user name
// and password, and STARTTLS before it unless clear is "1". The aiosmtpd
// command line cannot configure authentication, so this is the few lines of
// Python that can. Arguments: host port maildir cert key user password clear.
const authScript = `
import ssl, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
host, port, maildir, cert, key, user, password, clear = sys.argv[1:9]
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
    return AuthResult(success=ok)
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
# The controller's start-up probe cannot authenticate; it only needs the banner.
Controller(Mailbox(maildir), hostname=host, port=int(port), authenticator=check, auth_required=True,
           auth_require_tls=clear != "1", require_starttls=clear != "1", tls_context=tls, ready_timeout=10).start()
threading.Event().wait()
`

// StartAuthServer runs a server that requires SMTP AUTH with user and
// password, on a self-signed certificate for 127.0.0.1 (clients need
// insecure_skip_verify). It requires STARTTLS first unless clearAuth, in
// which case it also offers PLAIN and LOGIN over the clear connection, as a
// badly configured server would. It stops when the test ends.
func StartAuthServer(t testing.TB, user, password string, clearAuth bool) *Server {
	t.Helper()
	if err := exec.Command(Python, "-c", "import aiosmtpd").Run(); err != nil {
		t.Fatalf("aiosmtpd is not available to %s (%v); install it with: %s", Python, err, Install)
	}
	dir := t.TempDir()
	port := freePort(t)
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Mailbox: filepath.Join(dir, "maildir"), t: t}
	cert, key := selfSigned(t, dir)
	clear := "0"
	if clearAuth {
		clear = "1"
	}
	s.args = []string{"-c", authScript, "127.0.0.1", strconv.Itoa(port), s.Mailbox, cert, key, user, password, clear}
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// Restart starts a stopped server again on the same address and Maildir.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("smtptest: server at %s is already running", s.Addr)
	}
	out := &bytes.Buffer{}
	cmd := exec.Command(Python, s.args...)
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("smtptest: start aiosmtpd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.out = cmd, done, out
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("smtptest: aiosmtpd exited at start: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("smtptest: aiosmtpd did not listen on %s within 15s: %s", s.Addr, out)
		}
	}
}

// Stop kills the server; messages already accepted stay in the Maildir.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Messages reads every message in the Maildir, oldest first.
func Messages(t testing.TB, mailbox string) []*mail.Message {
	t.Helper()
	var files []string
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(mailbox, sub))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatalf("smtptest: read maildir: %v", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(mailbox, sub, e.Name()))
			}
		}
	}
	// Maildir names start with the delivery time in seconds; the
	// modification time orders messages within a second.
	type file struct {
		path string
		mod  time.Time
	}
	var fs []file
	for _, p := range files {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("smtptest: %v", err)
		}
		fs = append(fs, file{p, info.ModTime()})
	}
	slices.SortStableFunc(fs, func(a, b file) int { return a.mod.Compare(b.mod) })
	var out []*mail.Message
	for _, f := range fs {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatalf("smtptest: %v", err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("smtptest: parse %s: %v", f.path, err)
		}
		out = append(out, m)
	}
	return out
}

// WaitMessages waits until the Maildir holds at least n messages and
// returns them all, failing the test after timeout.
func WaitMessages(t testing.TB, mailbox string, n int, timeout time.Duration) []*mail.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := Messages(t, mailbox)
		if len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: %d messages after %v, want %d", len(ms), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a certificate and key for 127.0.0.1 and localhost.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
