//go:build !linux

package proxy

// closedCheck is empty here: a connection cannot be looked at without
// reading from it, and a closed idle connection is found out when a
// request meets it.
type closedCheck struct{}

func (c *upstreamConn) watch() {}

func (c *upstreamConn) peerClosed() bool { return false }
