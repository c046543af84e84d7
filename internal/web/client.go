package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the networks of reverse proxies and load balancers in
// front of Usher. Only a request that arrives from one of them may say,
// in X-Forwarded-For and X-Forwarded-Proto, who the client is and which
// scheme it used; from anyone else those headers are ignored, since a
// client can write them.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads comma-separated CIDRs ("10.0.0.0/8, 192.0.2.7/32");
// a bare address counts as a network of one.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an IP address", part)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an IP address", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peer is the address of the connection's other end.
func peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// ClientAddress is the address of the client that made the request. It is
// the connection's address, unless that is a trusted proxy: then it is the
// rightmost X-Forwarded-For hop that is not a trusted proxy, since each
// proxy appends the address it received the request from and only the
// hops our own proxies added can be believed. When every hop is trusted, it
// is the leftmost.
func (t TrustedProxies) ClientAddress(r *http.Request) string {
	a, ok := peer(r)
	if !ok {
		return r.RemoteAddr
	}
	if !t.trusts(a) {
		return a.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := a
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop that is no address: nothing left of it can be
			// believed; the last trusted proxy is the best we know.
			break
		}
		client = h.Unmap()
		if !t.trusts(client) {
			break
		}
	}
	return client.String()
}

// Scheme is "https" or "http": how the client reached Usher. A trusted
// proxy that ends TLS says so in X-Forwarded-Proto.
func (t TrustedProxies) Scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if a, ok := peer(r); ok && t.trusts(a) {
		// The proxy nearest to us wrote the last value.
		protos := strings.Split(strings.Join(r.Header.Values("X-Forwarded-Proto"), ","), ",")
		switch p := strings.ToLower(strings.TrimSpace(protos[len(protos)-1])); p {
		case "http", "https":
			return p
		}
	}
	return "http"
}
