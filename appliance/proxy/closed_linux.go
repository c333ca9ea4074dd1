package proxy

import (
	"syscall"
)

// closedCheck looks at a connection's socket without waiting and without
// taking anything from it. Its parts are made once per connection, so that
// a check costs one system call and no allocation.
type closedCheck struct {
	peek   func(fd uintptr) bool
	buf    [1]byte
	closed bool
}

// watch prepares peerClosed for the current connection, whose socket
// c.io has (see use).
func (c *upstreamConn) watch() {
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
	if c.io.rc == nil {
		return false
	}
	c.closed = false
	if err := c.io.rc.Read(c.peek); err != nil {
		return true
	}
	return c.closed
}
