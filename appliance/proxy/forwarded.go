package proxy

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// trusts reports whether ip is one of proxy.trusted_proxies: a proxy in
// front of canaryd whose forwarding headers say who the client is. Nobody
// is, unless the config says so, since any client can write them.
func (p *Proxy) trusts(ip net.IP) bool {
	if len(p.opts.TrustedProxies) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	return ok && p.trustsAddr(a.Unmap())
}

func (p *Proxy) trustsAddr(a netip.Addr) bool {
	for _, pr := range p.opts.TrustedProxies {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// client is the address the access log names: the peer's, or behind
// trusted proxies the last address in X-Forwarded-For that is not one of
// them, as nginx's real_ip_recursive finds it. Addresses left of that one
// were written by whoever the client is, and prove nothing.
func (p *Proxy) client(ctx *fasthttp.RequestCtx) string {
	peer := ctx.RemoteIP()
	if !p.trusts(peer) {
		return peer.String()
	}
	// The header as forwarded: the client's lines folded, with the peer last.
	xff := ctx.Request.Header.PeekBytes(xForwardedFor)
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		a, err := netip.ParseAddr(string(bytes.TrimSpace(xff[i+1:])))
		if err != nil {
			break
		}
		if a = a.Unmap(); !p.trustsAddr(a) {
			return a.String()
		}
		if i < 0 {
			return a.String() // every hop trusted: the first is the client
		}
		xff = xff[:i]
	}
	return peer.String()
}
