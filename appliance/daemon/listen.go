package daemon

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenTCP listens on addr even when addr's IP is not on an interface yet.
// canaryd starts at boot without waiting for the network, so that the
// panel shows the latch and the button works from the first seconds, with
// or without a cable; an address that DHCP brings later is bound already
// (IP_FREEBIND) and serves from the moment it is up.
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			if network == "tcp6" {
				err = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
				return
			}
			err = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		})
		return err
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
