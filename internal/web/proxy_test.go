package web_test

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/usherhq/usher/internal/web"
)

func TestClientAddress(t *testing.T) {
	trusted, err := web.ParseTrustedProxies(" 10.0.0.0/8 , 192.0.2.7, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, want string
	}{
		{"UntrustedPeerIgnoresTheHeader", "198.51.100.1:5000", "203.0.113.9", "198.51.100.1"},
		{"TrustedPeerWithoutHeaderIsTheClient", "10.1.2.3:5000", "", "10.1.2.3"},
		{"OneProxy", "10.1.2.3:5000", "203.0.113.9", "203.0.113.9"},
		{"RightmostUntrustedHopWins", "10.1.2.3:5000", "6.6.6.6, 203.0.113.9, 192.0.2.7", "203.0.113.9"},
		{"EveryHopTrustedIsTheLeftmost", "10.1.2.3:5000", "10.9.9.9, 192.0.2.7", "10.9.9.9"},
		{"GarbageStopsTheWalk", "10.1.2.3:5000", "203.0.113.9, not-an-ip", "10.1.2.3"},
		{"IPv6Proxy", "[2001:db8::1]:5000", "203.0.113.9", "203.0.113.9"},
		{"IPv4MappedPeer", "[::ffff:10.1.2.3]:5000", "203.0.113.9", "203.0.113.9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/signin", nil)
			r.RemoteAddr = c.peer
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := trusted.ClientAddress(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	t.Run("NoProxiesTrustsNoHeader", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/signin", nil)
		r.RemoteAddr = "10.1.2.3:5000"
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := web.TrustedProxies(nil).ClientAddress(r); got != "10.1.2.3" {
			t.Fatalf("got %s, want the peer", got)
		}
	})
	t.Run("BadCIDRIsRefused", func(t *testing.T) {
		for _, s := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.0/8,,nope"} {
			if _, err := web.ParseTrustedProxies(s); err == nil {
				t.Errorf("%q: no error", s)
			}
		}
	})
}

func TestScheme(t *testing.T) {
	trusted, _ := web.ParseTrustedProxies("10.0.0.0/8")
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := trusted.Scheme(r); got != "https" {
		t.Fatalf("from a trusted proxy: got %s, want https", got)
	}
	r.RemoteAddr = "198.51.100.1:5000"
	if got := trusted.Scheme(r); got != "http" {
		t.Fatalf("from anyone else: got %s, want http", got)
	}
	r.TLS = &tls.ConnectionState{}
	if got := trusted.Scheme(r); got != "https" {
		t.Fatalf("over TLS: got %s, want https", got)
	}
}
