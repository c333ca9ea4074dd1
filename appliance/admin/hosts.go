package admin

import (
	"net"
	"net/netip"
	"os"
	"strings"
)

// Hosts are the names an admin TCP listener answers to in the Host header.
// A browser sends the name it was pointed at; a page elsewhere that rebinds
// its own name to the Pi's address (DNS rebinding) still sends its own name,
// so refusing names that are not the Pi's keeps such pages from reading or
// changing anything through a visitor's browser.
type Hosts struct {
	names map[string]bool // lower case, without a trailing dot
	// anyIP: the listener is on every interface, so each interface
	// address is one of its names, as the interfaces are now.
	anyIP      bool
	interfaces func() ([]net.Addr, error)
}

// NewHosts returns the names of a listener on listen (host:port): its host,
// every loopback address, localhost, the machine's host name and that name
// in .local (mDNS), the interfaces' addresses when listen is on every
// interface, and extra.
func NewHosts(listen string, extra []string) *Hosts {
	h := &Hosts{names: map[string]bool{}, interfaces: net.InterfaceAddrs}
	add := func(name string) {
		if name = normalHost(name); name != "" {
			h.names[name] = true
		}
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		h.anyIP = true
	} else {
		add(host)
	}
	add("localhost")
	if name, err := os.Hostname(); err == nil && name != "" {
		short, _, _ := strings.Cut(name, ".")
		add(name)
		add(short)
		add(short + ".local")
	}
	for _, name := range extra {
		add(name)
	}
	return h
}

// Allows reports whether a request's Host (with or without its port) names
// this listener.
func (h *Hosts) Allows(hostport string) bool {
	host := normalHost(hostport)
	if host == "" {
		return false
	}
	if h.names[host] {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	if !h.anyIP {
		return false
	}
	// Read now rather than at start: a Pi's address comes and goes with
	// DHCP and Wi-Fi. Only an address literal gets here, never a name.
	addrs, err := h.interfaces()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if got, ok := netip.AddrFromSlice(n.IP); ok && got.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// normalHost is a Host header's host, as Allows compares it: without the
// port, the brackets of an IPv6 address, an IPv6 zone or a trailing dot,
// in lower case; "" when it is not a host.
func normalHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.WithZone("").Unmap().String()
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || strings.ContainsAny(host, "/:@[] \t") {
		return ""
	}
	return host
}
