package daemon

import (
	"net"
	"testing"
)

// At boot the LAN address may come with DHCP after canaryd started: the
// listen must not fail for it, where a plain bind does.
func TestTheProxyListensOnAnAddressTheNetworkBringsLater(t *testing.T) {
	for _, addr := range []string{"192.0.2.10:0", "[2001:db8::10]:0"} {
		if plain, err := net.Listen("tcp", addr); err == nil {
			plain.Close()
			t.Logf("%s: a plain bind works here (the address is local?); the test shows nothing for it", addr)
			continue
		}
		if addr[0] == '[' && !hasIPv6() {
			t.Logf("no IPv6 here for %s", addr)
			continue
		}
		ln, err := listenTCP(addr)
		if err != nil {
			t.Errorf("%s, not on any interface yet: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
