package proxy

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// clientListener gives every write to a client its own deadline, as
// nginx's send_timeout does: a client that stops reading a response is
// given up on, rather than holding its upstream connection for good.
// fasthttp's WriteTimeout would bound the whole response instead, and cut
// long downloads. Its connections also watch request heads as they
// arrive (headScan), with or without a timeout.
type clientListener struct {
	net.Listener
	timeout time.Duration
	conns   *conns
	log     *slog.Logger
}

func (l clientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cc := &clientConn{Conn: c, timeout: l.timeout}
		if !l.conns.admit(cc) {
			c.Close()
			if l.conns.shouldWarn() {
				l.log.Warn("client connections at proxy.max_connections, all busy: refusing new ones",
					"max_connections", l.conns.max)
			}
			continue
		}
		cc.head.begin()
		cc.io.init(c)
		return cc, nil
	}
}

type clientConn struct {
	net.Conn
	timeout time.Duration
	head    headScan
	served  int // requests read, for head

	// since is when the connection began to wait for a request, in unix
	// nanoseconds; 0 while it serves one. See conns.
	since    atomic.Int64
	answered bool // the request read last has been handled: a read now waits for the next
	set      *conns
	closed   atomic.Bool
	writeBy  deadline // see clientListener
	io       rawIO
}

// Read checks the line endings of a request head as it arrives (see
// headScan), and notes when the connection starts to wait for its next
// request.
func (c *clientConn) Read(b []byte) (int, error) {
	if c.answered {
		c.answered = false
		c.waitFrom(time.Now())
	}
	n, err := c.io.read(c.Conn, b)
	if c.head.on && n > 0 && !c.head.scan(b[:n]) && err == nil {
		err = errBareLF
	}
	return n, err
}

// ReadFrom keeps a streamed response from waiting in a buffer: see
// upstreamConn.ReadFrom.
func (c *clientConn) ReadFrom(r io.Reader) (int64, error) { return copyThrough(c, r) }

// copyThrough copies r to w, each piece as soon as r gives it.
func copyThrough(w io.Writer, r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(writerOnly{w}, r, *buf)
}

// writerOnly hides ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// handle serves one request; its connection, busy meanwhile, cannot be
// evicted to make room for another (see conns).
func (p *Proxy) handle(ctx *fasthttp.RequestCtx) {
	c, _ := ctx.Conn().(*clientConn)
	if c != nil {
		c.busy()
	}
	p.serve(ctx)
	if c != nil && !ctx.Hijacked() {
		c.answered = true
	}
}
