package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSignedCert writes a certificate and key for 127.0.0.1.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usher test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServeTLSWithMetricsOnTheirOwnAddress runs `usher serve` on HTTPS with
// /metrics moved to a private listener behind a token.
func TestServeTLSWithMetricsOnTheirOwnAddress(t *testing.T) {
	cert, key := selfSignedCert(t)
	setClock(t, time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC))
	srv := startServe(t, "tls", os.Getenv(testNowEnv), "--db", tempDB(t), "--tls-cert", cert, "--tls-key", key,
		"--metrics-addr", "127.0.0.1:0", "--metrics-token", "m3trics")
	var metricsAddr string
	eventually(t, 10*time.Second, func() (bool, string) {
		for _, l := range srv.logs() {
			if l["msg"] == "metrics listening" {
				metricsAddr, _ = l["addr"].(string)
			}
		}
		return metricsAddr != "", "no metrics listener logged"
	})
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(httpsClient, "https://"+srv.addr+"/readyz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("https /readyz: %d %s", code, body)
	}
	if resp, err := http.Get("http://" + srv.addr + "/readyz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP is answered on the TLS listener")
	}
	if code, _ := get(httpsClient, "https://"+srv.addr+"/metrics", "m3trics"); code != 404 {
		t.Fatalf("/metrics on the public listener: %d, want 404", code)
	}
	if code, _ := get(http.DefaultClient, "http://"+metricsAddr+"/metrics", ""); code != 401 {
		t.Fatalf("/metrics without the token: %d, want 401", code)
	}
	code, body := get(http.DefaultClient, "http://"+metricsAddr+"/metrics", "m3trics")
	if code != 200 || !strings.Contains(body, `usher_http_requests_total{route="GET /readyz",code="200"} 1`) ||
		!strings.Contains(body, `usher_db_connections_max{pool="writer"} 1`) {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	srv.stop()
}

func TestServeTLSFlagsGoTogether(t *testing.T) {
	cert, _ := selfSignedCert(t)
	code, _, stderr := cli(t, "serve", "--db", tempDB(t), "--tls-cert", cert)
	if code != 2 || !strings.Contains(stderr, "--tls-cert and --tls-key go together") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
