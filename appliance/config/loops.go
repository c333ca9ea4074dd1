package config

import (
	"net"
	"net/netip"
)

// checkLoops refuses an upstream that is canaryd itself: its admin
// listener (the proxy would hand the public side the admin API, token-free
// from loopback) or its own public side (every request would come back to
// canaryd until it ran out of connections).
func checkLoops(c *Config, ts []*table) {
	for i, u := range c.Upstreams {
		if u.URL == nil || i >= len(ts) {
			continue
		}
		t := ts[i]
		switch {
		case c.Admin.Listen != "" && sameListener(u.URL.Host, c.Admin.Listen):
			t.errs.add(t.at("url"), "upstream %q: url %s is canaryd's own admin.listen (%s): the proxy never forwards to the admin side; name the service's address",
				u.Name, u.URL, c.Admin.Listen)
		case sameListener(u.URL.Host, c.Proxy.Listen):
			t.errs.add(t.at("url"), "upstream %q: url %s is canaryd's own proxy.listen (%s): requests would loop back into canaryd; name the service's address",
				u.Name, u.URL, c.Proxy.Listen)
		}
	}
}

// sameListener reports whether a connection to the upstream host:port
// would reach a socket listening on listen: the same port, and the same
// address, or any local one when listen has none (":8080", "0.0.0.0:8080").
// A name other than localhost is not resolved: config checks stay offline.
func sameListener(upstream, listen string) bool {
	uh, up, err := net.SplitHostPort(upstream)
	if err != nil {
		return false
	}
	lh, lp, err := net.SplitHostPort(listen)
	if err != nil || up != lp {
		return false
	}
	ua, uerr := hostAddr(uh)
	la, lerr := hostAddr(lh)
	switch {
	case lh == "" || lerr == nil && la.IsUnspecified():
		return uerr == nil && (ua.IsLoopback() || ua.IsUnspecified())
	case uerr == nil && lerr == nil:
		return ua == la
	}
	return uh == lh
}

func hostAddr(h string) (netip.Addr, error) {
	if h == "localhost" {
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	a, err := netip.ParseAddr(h)
	return a.Unmap(), err
}
