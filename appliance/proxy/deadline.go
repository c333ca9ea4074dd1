package proxy

import (
	"net"
	"time"
)

// deadline is one side's (read or write) deadline of a connection as last
// set, so that a read or write moves it only when it has come closer than
// slack: silence of timeout-slack to timeout is allowed instead of exactly
// timeout, and a request on a busy connection sets no deadline at all,
// where it used to set one for every read and write.
type deadline struct{ at time.Time }

// slack is the part of a timeout a deadline may use up before it is moved.
func slack(timeout time.Duration) time.Duration { return timeout / 8 }

// extend moves the deadline to now+timeout with set when it is due.
func (d *deadline) extend(now time.Time, timeout time.Duration, set func(time.Time) error) {
	if t := now.Add(timeout); d.at.IsZero() || t.Sub(d.at) > slack(timeout) {
		if set(t) == nil {
			d.at = t
		}
	}
}

// forget is for a deadline set from elsewhere (fasthttp, a hijack, a new
// connection): the next read or write sets its own.
func (d *deadline) forget() { d.at = time.Time{} }

func (c *clientConn) Write(b []byte) (int, error) {
	if c.timeout > 0 {
		c.writeBy.extend(time.Now(), c.timeout, c.Conn.SetWriteDeadline)
	}
	return c.Conn.Write(b)
}

func (c *clientConn) SetWriteDeadline(t time.Time) error {
	c.writeBy.forget()
	return c.Conn.SetWriteDeadline(t)
}

func (c *clientConn) SetDeadline(t time.Time) error {
	c.writeBy.forget()
	return c.Conn.SetDeadline(t)
}

func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	c.readBy.forget()
	return c.Conn.SetReadDeadline(t)
}

func (c *upstreamConn) SetWriteDeadline(t time.Time) error {
	c.writeBy.forget()
	return c.Conn.SetWriteDeadline(t)
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	c.readBy.forget()
	c.writeBy.forget()
	return c.Conn.SetDeadline(t)
}

var _ net.Conn = (*upstreamConn)(nil)
