package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/route"
)

// Prepare makes a connection pool ready for every upstream of plan, reusing
// the pool of an upstream with the same origin in the running plan, so that
// a reload keeps warm connections. Call it before publishing plan.
func (p *Proxy) Prepare(plan *route.Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := maps.Clone(*p.pools.Load())
	for _, u := range plan.Upstreams {
		if next[u.Origin] == nil {
			next[u.Origin] = p.newPool(u)
		}
	}
	p.pools.Store(&next)
}

// Retire closes the pools of upstreams that old had and current has not.
// Requests still in flight on them finish; their connections then close
// instead of going back to a pool.
func (p *Proxy) Retire(old, current *route.Plan) {
	keep := map[string]bool{}
	for _, u := range current.Upstreams {
		keep[u.Origin] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := maps.Clone(*p.pools.Load())
	for _, u := range old.Upstreams {
		if pl := next[u.Origin]; pl != nil && !keep[u.Origin] {
			pl.Close()
			delete(next, u.Origin)
		}
	}
	p.pools.Store(&next)
}

// poolOf is the connection pool of u. A request still on a plan that a
// reload replaced may pick an upstream whose pool Retire closed: it gets a
// pool of its own, already closed, so that it reaches the upstream it
// picked and its connection ends with it.
func (p *Proxy) poolOf(u *route.Upstream) *pool {
	if pl := (*p.pools.Load())[u.Origin]; pl != nil {
		return pl
	}
	pl := p.newPool(u)
	pl.retired.Store(true)
	return pl
}

// pool is the keep-alive connection pool to one upstream.
type pool struct {
	hc   *fasthttp.HostClient
	tls  bool
	addr string
	// connect opens a TCP connection to the upstream; dial makes it a
	// pooled upstreamConn, for fasthttp.
	connect func(addr string) (net.Conn, error)
	dial    func(addr string) (net.Conn, error)
	retired atomic.Bool
}

// Close closes the idle connections, and every busy one once its request
// is done (see released).
func (pl *pool) Close() {
	pl.retired.Store(true)
	pl.hc.CloseIdleConnections()
}

// released is called after a request gave its connection back to the
// pool. Closing what is idle then, rather than on a timer, means that a
// retired upstream keeps no connection open once its last request ends;
// the order (retired set before Close's sweep, read after the release)
// leaves no connection behind.
func (pl *pool) released() {
	if pl.retired.Load() {
		pl.hc.CloseIdleConnections()
	}
}

func (p *Proxy) newPool(u *route.Upstream) *pool {
	pl := &pool{tls: u.URL.Scheme == "https", addr: u.URL.Host, connect: p.opts.Dial}
	if pl.connect == nil {
		dialer := &net.Dialer{Timeout: p.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
		pl.connect = func(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) }
	}
	dial := pl.connect
	pl.dial = func(addr string) (net.Conn, error) {
		c, err := dial(addr)
		if err != nil {
			return nil, &dialError{err}
		}
		uc := &upstreamConn{timeout: p.opts.ReadTimeout}
		if !pl.tls {
			// Under TLS the session lives on the connection: it cannot be
			// swapped for a new one.
			uc.redial = func() (net.Conn, error) { return dial(addr) }
		}
		uc.use(c)
		return uc, nil
	}
	pl.hc = &fasthttp.HostClient{
		Addr:                          pl.addr,
		IsTLS:                         pl.tls,
		TLSConfig:                     &tls.Config{ServerName: u.URL.Hostname(), MinVersion: tls.VersionTLS12},
		Dial:                          pl.dial,
		MaxConns:                      4096,
		MaxConnWaitTimeout:            p.opts.ConnectTimeout,
		MaxIdleConnDuration:           p.opts.UpstreamIdle,
		MaxIdemponentCallAttempts:     2,
		RetryIfErr:                    retryStaleConn,
		StreamResponseBody:            true,
		ReadBufferSize:                16 << 10,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
	}
	return pl
}

// retryStaleConn lets fasthttp retry an idempotent request once, on a new
// connection to the same upstream, when its pooled keep-alive connection
// turned out to be closed by the upstream before it answered. That is the
// ordinary race of keep-alive, not a failure of the upstream, and it shows
// as an EOF or, when the request reached a socket already closed, a reset.
// fasthttp cannot tell a reused connection from a new one, so a new one
// that fails so gets the same second chance. A request body that was
// streamed is never replayed (fasthttp checks that before asking), and a
// timeout is not retried here: the wait would double on the same upstream.
func retryStaleConn(req *fasthttp.Request, attempts int, err error) (bool, bool) {
	var de *dialError
	if errors.As(err, &de) || isTimeout(err) || !idempotent(req) {
		return false, false
	}
	return false, true
}

// dialError marks a failure to connect: nothing was sent, so any request
// may go to another upstream.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }

func (e *dialError) Unwrap() error { return e.err }

// upstreamConn is a connection to an upstream. Every read and write gets
// its own deadline, so a timeout bounds the silence between two reads
// rather than a whole response.
//
// It also does what nginx does for its idle keep-alive connections: notice
// that the upstream closed one while it sat in the pool. Upstreams close
// idle connections without a word after a few seconds (Node, gunicorn,
// Apache), and fasthttp would send the next request on such a connection
// anyway; a GET gets a second chance (retryStaleConn), but a POST would
// fail, and the upstream would be blamed for it. So the first write of a
// request on a connection that already carried one (the first write after a
// read) checks it when it sat idle for longer than peekAfter, and a closed
// one is replaced by a new connection before any byte goes out. Under load
// connections go back out within milliseconds, and the check, a system
// call, is skipped.
type upstreamConn struct {
	net.Conn
	timeout time.Duration
	redial  func() (net.Conn, error) // nil when the connection cannot be replaced
	// lastRead and lastWrite are when they began; a write after a read is
	// the start of a new request.
	lastRead, lastWrite time.Time
	readBy, writeBy     deadline
	io                  rawIO
	closedCheck         // what peerClosed needs, set up once per connection
}

// use makes nc the connection c reads and writes: a new one, or the one
// that replaces a connection the upstream closed while it was idle.
func (c *upstreamConn) use(nc net.Conn) {
	c.Conn = nc
	c.readBy.forget()
	c.writeBy.forget()
	c.io.init(nc)
	c.watch()
}

func (c *upstreamConn) Read(b []byte) (int, error) {
	now := time.Now()
	c.lastRead = now
	if c.timeout > 0 {
		c.readBy.extend(now, c.timeout, c.Conn.SetReadDeadline)
	}
	return c.io.read(c.Conn, b)
}

// peekAfter is how long a connection sits idle before its next request
// checks that the upstream did not close it: far below the keep-alive
// timeouts after which servers close idle connections (gunicorn's 2 s is
// the shortest common one), and above the gaps between requests of steady
// traffic. An upstream that closes a connection sooner after an answer,
// without a Connection: close, fails a request that is not retried. The
// idle time is taken from the start of the connection's last read, which
// can only overstate it.
const peekAfter = 100 * time.Millisecond

func (c *upstreamConn) Write(b []byte) (int, error) {
	now := time.Now()
	if c.redial != nil && c.lastRead.After(c.lastWrite) && now.Sub(c.lastRead) > peekAfter && c.peerClosed() {
		nc, err := c.redial()
		if err != nil {
			// Nothing of the request went out: as good as refused.
			return 0, &dialError{err}
		}
		c.Conn.Close()
		c.use(nc)
	}
	c.lastWrite = now
	if c.timeout > 0 {
		c.writeBy.extend(now, c.timeout, c.Conn.SetWriteDeadline)
	}
	return c.io.write(c.Conn, b)
}

// ReadFrom sends each piece of r on as soon as r gives it. fasthttp writes
// a body of known length through a bufio.Writer, which hands the copy over
// to its connection's ReadFrom once its buffer is flushed; without one it
// would hold the last few KiB until more came, and a body paused by its
// sender would stall in the proxy.
func (c *upstreamConn) ReadFrom(r io.Reader) (int64, error) { return copyThrough(c, r) }
