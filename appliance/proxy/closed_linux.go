package proxy

import (
	"syscall"
)

// closedCheck looks at a connection's socket without waiting and without
// taking anything from it. Its parts are made once per connection, so that
// a check costs one system call and no allocation.
type closedCheck struct {
	raw    syscall.RawConn
	peek   func(fd uintptr) bool
	buf    [1]byte
	closed bool
}

// watch prepares peerClosed for the current connection.
func (c *upstreamConn) watch() {
	c.raw = nil
	if sc, ok := c.Conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	if c.peek == nil {
		c.peek = func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), c.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			c.closed = err != syscall.EAGAIN && err != syscall.EINTR
			return true
		}
	}
}

// peerClosed reports whether the upstream closed the connection, or sent
// something unasked (which leaves it as unusable), while it sat idle.
// Write asks only of a connection idle for longer than peekAfter.
func (c *upstreamConn) peerClosed() bool {
	if c.raw == nil {
		return false
	}
	c.closed = false
	if err := c.raw.Read(c.peek); err != nil {
		return true
	}
	return c.closed
}
