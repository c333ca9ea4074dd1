// Package proxy is canaryd's data plane: an HTTP/1.1 reverse proxy that asks
// the router for an upstream per request and streams bodies both ways.
//
// The engine is fasthttp, chosen for its CPU cost per request (close to
// nginx's, about a fifth of net/http's reverse proxy on the same load). It
// stays inside this package: the rest of the appliance sees New, Serve,
// Prepare, Retire and Shutdown, and two switches, SetAccessLog and
// SetJournal.
package proxy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// Options are the data plane's limits.
type Options struct {
	ConnectTimeout time.Duration // dialing an upstream
	// ReadTimeout bounds the wait for each read from an upstream (its
	// response headers, then every piece of its body), and each write to it,
	// as nginx's proxy_read_timeout and proxy_send_timeout do.
	ReadTimeout time.Duration
	// IdleTimeout bounds every wait for a client: an idle keep-alive
	// connection, each piece of a request body, and each write of a
	// response (nginx's keepalive_timeout, client_body_timeout and
	// send_timeout).
	IdleTimeout time.Duration
	// HeaderTimeout bounds the arrival of a whole request head, from a new
	// connection's start or a keep-alive request's first byte (nginx's
	// client_header_timeout): a client trickling its head a byte at a time
	// is cut off long before the idle timeout. 0 takes IdleTimeout.
	HeaderTimeout time.Duration
	// MaxConns bounds the client connections held at once (see conns);
	// 0 for no bound.
	MaxConns int
	// TrustedProxies are the peers whose X-Forwarded-* headers are
	// believed (see forwarded).
	TrustedProxies []netip.Prefix
	// Dial connects to an upstream's host:port; nil dials TCP within
	// ConnectTimeout. Benchmarks give it in-memory connections.
	Dial         func(addr string) (net.Conn, error)
	UpstreamIdle time.Duration // an idle pooled upstream connection
	Logger       *slog.Logger
}

// outcome is how one attempt on an upstream ended.
type outcome struct {
	Status   int           // the upstream's status code; 0 when it gave none
	Failed   bool          // refused, reset or timed out before the headers: counts toward max_fails
	Duration time.Duration // until the response headers (or the failure)
}

// Proxy is the data plane.
type Proxy struct {
	router    *route.Router
	opts      Options
	log       *slog.Logger
	srv       *fasthttp.Server
	probePath string
	accessLog atomic.Bool
	journal   atomic.Pointer[journal.Journal]
	ids       *ids
	conns     *conns

	mu    sync.Mutex
	pools map[string]*pool // by upstream URL
}

// New returns a proxy that routes with r.
func New(r *route.Router, opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Proxy{router: r, opts: opts, log: opts.Logger, pools: map[string]*pool{}, probePath: newProbePath(), ids: newIDs(),
		conns: newConns(opts.MaxConns)}
	// ReadTimeout bounds the wait for a request head, so that silent or
	// trickling clients cannot hold connections forever; clientBody bounds
	// the body's reads.
	p.srv = &fasthttp.Server{
		Handler:                       p.handle,
		ErrorHandler:                  p.badRequest,
		IdleTimeout:                   opts.IdleTimeout,
		ReadTimeout:                   cmp.Or(opts.HeaderTimeout, opts.IdleTimeout),
		StreamRequestBody:             true,
		MaxRequestBodySize:            64 << 10, // buffered before streaming starts
		ReadBufferSize:                16 << 10, // the longest request head accepted
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		LazyRequestTime:               true, // read only for the journal's records (record.go)
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{opts.Logger},
	}
	return p
}

// Serve accepts client connections on ln until Shutdown.
func (p *Proxy) Serve(ln net.Listener) error {
	return p.srv.Serve(clientListener{ln, p.opts.IdleTimeout, p.conns, p.log})
}

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

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// and closes the upstream pools.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.srv.ShutdownWithContext(ctx)
	p.mu.Lock()
	for k, pl := range p.pools {
		pl.Close()
		delete(p.pools, k)
	}
	p.mu.Unlock()
	return err
}

// Prepare gives every upstream of plan its connection pool, reusing the pool
// of an upstream with the same URL in the running plan, so that a reload
// keeps warm connections. Call it before publishing plan.
func (p *Proxy) Prepare(plan *route.Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range plan.Upstreams {
		key := u.URL.String()
		pl := p.pools[key]
		if pl == nil {
			pl = p.newPool(u)
			p.pools[key] = pl
		}
		u.Transport = pl
	}
}

// Retire closes the pools of upstreams that old had and current has not.
// Requests still in flight on them finish; their connections then close
// instead of going back to a pool.
func (p *Proxy) Retire(old, current *route.Plan) {
	keep := map[string]bool{}
	for _, u := range current.Upstreams {
		keep[u.URL.String()] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range old.Upstreams {
		key := u.URL.String()
		if pl := p.pools[key]; pl != nil && !keep[key] {
			pl.Close()
			delete(p.pools, key)
		}
	}
}

// pool is the keep-alive connection pool to one upstream.
type pool struct {
	hc      *fasthttp.HostClient
	tls     bool
	addr    string
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
	pl := &pool{tls: u.URL.Scheme == "https", addr: u.URL.Host}
	dial := p.opts.Dial
	if dial == nil {
		dialer := &net.Dialer{Timeout: p.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
		dial = func(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) }
	}
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

// serve proxies one request.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	if p.refused(ctx) {
		return
	}
	if p.isProbe(ctx) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	if p.accessLog.Load() {
		defer p.logAccess(ctx, time.Now())
	}
	if up := upgradeOf(&ctx.Request.Header); up != nil {
		p.serveUpgrade(ctx, string(up))
		return
	}
	if ctx.Request.Header.ConnectionClose() {
		// Whatever the answer, error responses included.
		defer ctx.SetConnectionClose()
	}
	j := p.journal.Load()
	// An HTTP/1.0 client need not name a host. The upstream is then asked
	// by its own name, as nginx does, since fasthttp (rightly) sends no
	// request without one.
	hostless := len(ctx.Request.Header.Host()) == 0
	t := tries{plan: p.router.Plan()}
	var idb idBuf
	id := p.prepareRequest(ctx, t.plan, &idb)
	var body *clientBody
	if ctx.Request.IsBodyStream() {
		body = &clientBody{ctx: ctx, r: ctx.Request.BodyStream(),
			left: ctx.Request.Header.ContentLength(), timeout: p.opts.IdleTimeout}
		ctx.Request.SetBodyStream(body, body.left)
	}

	u := p.first(&t, &ctx.Request)
	if u == nil {
		p.fail(ctx, id, fasthttp.StatusBadGateway, "no upstream is available")
		return
	}
	// rec is the journal's record while the request is on a canary.
	var rec *record
	for {
		if hostless {
			ctx.Request.URI().SetHost(u.URL.Host)
		}
		if p.accessLog.Load() {
			ctx.SetUserValue(upstreamKey, u.Name)
		}
		t.tellVersion(&ctx.Request.Header, u)
		if j != nil {
			rec = t.follow(rec, j, ctx, id, u, body)
		}
		resp, err := p.attempt(ctx, t.plan, u, body)
		if err == nil {
			if rec != nil {
				rec.e.Status, rec.e.BytesIn = resp.resp.StatusCode(), bytesIn(ctx, body)
				resp.rec = rec
			}
			relay(ctx, resp, id)
			return
		}
		if body.failed() {
			rec.failed(ctx, body, err)
			p.clientFailed(ctx, id, body.err)
			return
		}
		if retryable(&ctx.Request, err) {
			if next := p.retry(&t); next != nil {
				if p.log.Enabled(ctx, slog.LevelDebug) {
					// The arguments cost allocations even when dropped.
					p.log.Debug("retrying on another upstream", "UPSTREAM", u.Name, "error", err.Error())
				}
				u = next
				continue
			}
		}
		rec.failed(ctx, body, err)
		p.failWith(ctx, id, err)
		return
	}
}

// tellVersion tells a canary upstream its version in the plan's version
// header, and makes sure a stable one never sees that header: neither the
// client's (prepareRequest drops it) nor the one an earlier attempt on a
// canary set.
func (t *tries) tellVersion(h *fasthttp.RequestHeader, u *route.Upstream) {
	name := t.plan.VersionHeader()
	switch {
	case name == nil:
	case u.Role == config.Canary:
		h.SetCanonical(name, t.plan.CanaryVersion())
		t.versioned = true
	case t.versioned:
		h.DelBytes(name)
		t.versioned = false
	}
}

// follow keeps the journal's record of a request while its attempts are on
// canary upstreams: rec is the record so far (nil before the first), the
// result the record for the attempt on u, nil when u is stable.
func (t *tries) follow(rec *record, j *journal.Journal, ctx *fasthttp.RequestCtx, id []byte, u *route.Upstream, body *clientBody) *record {
	if u.Role != config.Canary {
		if rec != nil {
			rec.drop()
			body.teeTo(nil)
		}
		return nil
	}
	if rec == nil {
		rec = newRecord(j, ctx, id, t.key)
		rec.e.Version = t.plan.Version()
		if rec.capture {
			body.teeTo(rec)
		}
	}
	rec.e.Upstream = u.Name
	return rec
}

// failed records a request whose last attempt, on a canary, got no answer
// (err): with status 0 when the canary may have seen it, not at all when it
// cannot have, since the connection was never made.
func (r *record) failed(ctx *fasthttp.RequestCtx, body *clientBody, err error) {
	if r == nil {
		return
	}
	if !sent(err) {
		r.drop()
		return
	}
	r.e.Status, r.e.BytesIn = 0, bytesIn(ctx, body)
	r.finish(0)
}

// sent reports whether a request that met err may have reached its
// upstream.
func sent(err error) bool {
	var de *dialError
	return !errors.As(err, &de) && !errors.Is(err, fasthttp.ErrNoFreeConns)
}

// bytesIn is how many bytes of the request's body went on to an upstream.
func bytesIn(ctx *fasthttp.RequestCtx, body *clientBody) int64 {
	if body != nil {
		return body.n
	}
	return int64(len(ctx.Request.Body()))
}

// tries is one request's way through the routing: the plan it started on,
// the upstreams it tried, and whether it has had nginx's one retry on
// another upstream.
type tries struct {
	plan    *route.Plan
	tried   swrr.Set
	retried bool
	key     []byte // the user key first found; nil without one
	// versioned: the request carries the plan's version header, set for an
	// attempt on a canary.
	versioned bool
}

// first picks the upstream of a new request on t.plan; nil when none is
// available.
// A request with a user key (canary.sticky_header or sticky_cookie) or a
// tester's override header goes to the role its key or override names.
func (p *Proxy) first(t *tries, req *fasthttp.Request) *route.Upstream {
	if !t.plan.Keyed() {
		return t.plan.Pick(&t.tried, time.Now())
	}
	var key, override []byte
	if name := t.plan.StickyHeader(); name != nil {
		key = header(&req.Header, name)
	}
	if name := t.plan.StickyCookie(); name != nil && len(key) == 0 {
		key = req.Header.CookieBytes(name)
	}
	if name := t.plan.OverrideHeader(); name != nil {
		override = header(&req.Header, name)
	}
	t.key = key
	return t.plan.PickFor(t.plan.Affinity(key, override), &t.tried, time.Now())
}

// header is the value of the request header name, in any case: the server
// keeps header names as the client wrote them, so fasthttp's Peek, which
// then compares them exactly, would miss "x-user-id" for "X-User-ID".
func header(h *fasthttp.RequestHeader, name []byte) []byte {
	for k, v := range h.All() {
		if bytes.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// retry picks the upstream for the retry after a failed attempt, on the
// plan the request started on and in the router's mode now; nil when the
// request has had its retry or no other upstream is left.
func (p *Proxy) retry(t *tries) *route.Upstream {
	if t.retried {
		return nil
	}
	t.retried = true
	return t.plan.PickRetry(&t.tried, p.router.Plan().Mode, time.Now())
}

// attempt sends the request to u once and accounts for the outcome.
func (p *Proxy) attempt(ctx *fasthttp.RequestCtx, plan *route.Plan, u *route.Upstream, body *clientBody) (*upstreamResponse, error) {
	pl := u.Transport.(*pool)
	if pl.tls {
		ctx.Request.URI().SetScheme("https")
	} else {
		ctx.Request.URI().SetScheme("http")
	}
	resp := upstreamResponses.Get().(*upstreamResponse)
	resp.pool = pl
	// An upstream that names no type gets none made up for it.
	resp.resp.Header.SetNoDefaultContentType(true)
	u.Stats.Begin()
	start := time.Now()
	err := pl.hc.Do(&ctx.Request, &resp.resp)
	end := time.Now()

	o := outcome{Duration: end.Sub(start)}
	switch {
	case err == nil:
		// Accounted for once the body is through (see release): an
		// upstream can still fail in it.
		o.Status = resp.resp.StatusCode()
		resp.plan, resp.u, resp.o, resp.end = plan, u, o, end
		return resp, nil
	case body.failed():
		// The client went away or sent a broken body: nobody's failure.
		resp.release()
		u.Stats.Abandon()
		plan.Done(u, false, end)
		return nil, err
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		// Our own pool limit, not the upstream's doing: not an attempt on
		// it, and no sample for its error rate.
		resp.release()
		u.Stats.Abandon()
		plan.Done(u, false, end)
		return nil, err
	}
	o.Failed = true
	resp.release()
	p.account(plan, u, o, end)
	return nil, err
}

// account records the outcome of one attempt on u, which Begin counted in
// flight.
func (p *Proxy) account(plan *route.Plan, u *route.Upstream, o outcome, end time.Time) {
	u.Stats.Record(end, o.Status, o.Failed, o.Duration)
	plan.Done(u, o.Failed, end)
}

// upstreamResponse is an upstream's answer. It is kept apart from the
// client's response, which only borrows its headers and streams its body:
// fasthttp decides whether the upstream connection goes back to the pool
// from the response it read, so sharing one would let the client's
// Connection: close (which the server sets on the client's response) close
// a healthy upstream connection too.
//
// It is the client's body stream itself, so it must offer nothing but Read
// and CloseWithError: fasthttp copies with any WriteTo it finds.
type upstreamResponse struct {
	resp fasthttp.Response
	pool *pool
	body io.Reader
	n    int64   // body bytes relayed
	rec  *record // the journal's, finished with the response; nil without
	// The attempt that got it, accounted for once its body is through: u
	// is nil for a response of no attempt (one that failed, and was
	// accounted for there).
	plan *route.Plan
	u    *route.Upstream
	o    outcome
	end  time.Time // when the headers came
	// broke is how the upstream's body failed (a reset, a read timeout,
	// a body cut short); nil while it has not.
	broke error
	// to is the client's response header, for the trailers that come
	// after a chunked body; nil when the body has a length.
	to *fasthttp.ResponseHeader
}

var upstreamResponses = sync.Pool{New: func() any { return new(upstreamResponse) }}

// relay makes resp the client's response, with the request's id.
func relay(ctx *fasthttp.RequestCtx, up *upstreamResponse, id []byte) {
	copyResponseHeader(&ctx.Response.Header, &up.resp.Header)
	ctx.Response.Header.SetCanonical(xRequestID, id)
	if !up.resp.IsBodyStream() {
		up.release()
		return
	}
	up.body = up.resp.BodyStream()
	n := up.resp.Header.ContentLength()
	if n >= 0 {
		ctx.Response.SetBodyStream(up, n)
		return
	}
	if !ctx.Request.Header.IsHTTP11() {
		relayUntilClose(ctx, up)
		return
	}
	// Chunked, also when the upstream ends the body by closing, so that the
	// client connection can stay open.
	up.to = &ctx.Response.Header
	ctx.Response.SetBodyStream(up, -1)
}

// relayUntilClose sends an HTTP/1.0 client a body of unknown length the
// only way it can read one: ended by closing the connection. fasthttp
// would send such a stream chunked whatever the client's version, so the
// response is written here, on the hijacked connection.
func relayUntilClose(ctx *fasthttp.RequestCtx, up *upstreamResponse) {
	h := &ctx.Response.Header
	h.SetConnectionClose()
	head := h.AppendBytes(nil)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		_, err := c.Write(head)
		if err == nil {
			_, err = io.Copy(c, up)
		}
		up.CloseWithError(err)
	})
}

// Read reads the upstream's body. Its errors are the upstream's: the
// client's side is written, not read, here.
func (r *upstreamResponse) Read(b []byte) (int, error) {
	n, err := r.body.Read(b)
	r.n += int64(n)
	switch {
	case err == io.EOF && r.to != nil:
		relayTrailers(r.to, &r.resp.Header)
	case err != nil && err != io.EOF:
		r.broke = err
	}
	return n, err
}

// relayTrailers passes on the trailer fields an upstream sent after its
// chunked body; fasthttp writes them after the client's last chunk. Those
// that may not be trailers (framing, routing, authentication) fasthttp
// refuses, and they are dropped, as nginx drops them.
func relayTrailers(to, from *fasthttp.ResponseHeader) {
	for k := range from.Trailers() {
		if v := from.PeekBytes(k); v != nil && to.AddTrailerBytes(k) == nil {
			to.SetBytesKV(k, v)
		}
	}
}

// CloseWithError is called once the client's response is written, or
// failed to be (err): the upstream connection goes back to the pool only
// when its body was read whole. That is the end of the request, for the
// journal too.
func (r *upstreamResponse) CloseWithError(err error) error {
	if err == nil {
		err = r.broke
	}
	if c, ok := r.body.(fasthttp.ReadCloserWithError); ok {
		c.CloseWithError(err)
	}
	r.release()
	return nil
}

// release ends the response: it accounts for its attempt and gives the
// response back to its pool.
//
// A body that broke off after the headers is an error of its upstream for
// the verdict and the counters: the client got no whole answer, and fasthttp
// closes its connection, having no way to tell it otherwise. It does not
// count toward max_fails, as in nginx, whose peer.free is told of a failure
// only by ngx_http_upstream_next, before a response was relayed: once the
// headers went out there is no other upstream to try, and a body cut short
// (a crashed worker, say) says less about the next request than a refused
// connection does. A client that went away mid-body leaves broke nil: the
// upstream answered, and is not blamed.
func (r *upstreamResponse) release() {
	if u := r.u; u != nil {
		end := r.end
		if r.body != nil {
			end = time.Now()
		}
		u.Stats.Record(end, r.o.Status, r.broke != nil, r.o.Duration)
		r.plan.Done(u, false, end)
	}
	if r.rec != nil {
		r.rec.finish(r.n)
	}
	r.resp.Reset()
	pl := r.pool
	r.pool, r.body, r.rec, r.n = nil, nil, nil, 0
	r.plan, r.u, r.broke, r.to = nil, nil, nil, nil
	upstreamResponses.Put(r)
	pl.released()
}

// clientBody is the client's request body on its way to an upstream. It
// tells a client that stopped sending or broke its connection apart from
// an upstream that failed, and bounds every wait for the client's next
// bytes, as nginx's client_body_timeout does.
type clientBody struct {
	ctx     *fasthttp.RequestCtx
	r       io.Reader
	left    int // bytes still to come; negative when chunked
	timeout time.Duration
	err     error   // the client's failure
	n       int64   // bytes read
	tee     *record // keeps the body's start for the journal; nil when not
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.timeout > 0 {
		b.ctx.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.tee != nil {
		b.tee.tee(p[:n])
	}
	if b.left >= 0 {
		b.left -= n
		if err == io.EOF && b.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *clientBody) failed() bool { return b != nil && b.err != nil }

// teeTo has the body's bytes kept in r (nil: no longer) as they pass.
func (b *clientBody) teeTo(r *record) {
	if b != nil {
		b.tee = r
	}
}

// retryable reports whether a request that met err may go to another
// upstream: always when the connection was never made, otherwise only for
// an idempotent request whose body was not streamed, so nothing of it is
// lost. As in nginx, that includes a timeout.
func retryable(req *fasthttp.Request, err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	return idempotent(req) && !req.IsBodyStream()
}

func idempotent(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodTrace:
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// clientFailed answers a client whose request body broke off; it is
// usually gone, and its connection is not reused either way.
func (p *Proxy) clientFailed(ctx *fasthttp.RequestCtx, id []byte, err error) {
	if isTimeout(err) {
		p.fail(ctx, id, fasthttp.StatusRequestTimeout, "the request body stopped arriving")
	} else {
		p.fail(ctx, id, fasthttp.StatusBadRequest, "the request body ended early")
	}
	// After fail, whose Reset would clear it: what is left of the body
	// cannot be told from the next request.
	ctx.SetConnectionClose()
}

func (p *Proxy) failWith(ctx *fasthttp.RequestCtx, id []byte, err error) {
	if isTimeout(err) {
		p.fail(ctx, id, fasthttp.StatusGatewayTimeout, "the upstream did not answer in time")
		return
	}
	p.fail(ctx, id, fasthttp.StatusBadGateway, "the upstream failed")
}

// fail answers with canaryd's own error response; id is the request's,
// nil for a request that could not be read.
func (p *Proxy) fail(ctx *fasthttp.RequestCtx, id []byte, code int, why string) {
	ctx.Response.Reset()
	if id != nil {
		ctx.Response.Header.SetCanonical(xRequestID, id)
	}
	ctx.Response.SetStatusCode(code)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString(fasthttp.StatusMessage(code) + ": " + why + "\n")
}

// badRequest answers a request fasthttp could not read.
func (p *Proxy) badRequest(ctx *fasthttp.RequestCtx, err error) {
	ctx.SetConnectionClose()
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		p.fail(ctx, nil, fasthttp.StatusRequestHeaderFieldsTooLarge, "the request head is too large")
	case isTimeout(err):
		p.fail(ctx, nil, fasthttp.StatusRequestTimeout, "the request did not arrive in time")
	default:
		p.fail(ctx, nil, fasthttp.StatusBadRequest, "malformed request")
	}
	p.log.Debug("unreadable request", "client", ctx.RemoteAddr().String(), "error", err.Error())
}

// hopByHop are the headers that belong to one connection, not the message
// (RFC 9110 section 7.6.1), plus the non-standard ones proxies also drop.
var hopByHop = [][]byte{
	[]byte("Connection"), []byte("Proxy-Connection"), []byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"), []byte("Proxy-Authorization"), []byte("Te"),
	[]byte("Trailer"), []byte("Upgrade"), []byte("Expect"),
}

var (
	connectionHeader = []byte("Connection")
	cookieHeader     = []byte("Cookie")
	upgradeHeader    = []byte("Upgrade")
	upgradeToken     = []byte("upgrade")
	xForwardedFor    = []byte("X-Forwarded-For")
	xForwardedProto  = []byte("X-Forwarded-Proto")
	xForwardedHost   = []byte("X-Forwarded-Host")
	schemeHTTP       = []byte("http")
	schemeHTTPS      = []byte("https")
)

// Header names are passed on as they came, not normalized, so every lookup
// here matches them case-insensitively: lower-case names are common, and a
// hop-by-hop header that slipped through in another spelling would leak.
// Requests are read through AllInOrder, the head as received: All would
// parse (and later rewrite) the client's cookies.

// hopByHopIn reports whether name is a hop-by-hop header for a message
// whose Connection headers are conn.
func hopByHopIn(conn [][]byte, name []byte) bool {
	for _, hb := range hopByHop {
		if named(name, hb) {
			return true
		}
	}
	for _, v := range conn {
		if listed(v, name) {
			return true
		}
	}
	return false
}

// named reports whether the header name k is name, in any case. The
// length goes first: most names differ in it, and EqualFold would compare
// their bytes first.
func named(k, name []byte) bool { return len(k) == len(name) && bytes.EqualFold(k, name) }

// listed reports whether the comma-separated list v names token.
func listed(v, token []byte) bool {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), token) {
			return true
		}
	}
	return false
}

// connectionValues appends the values of the Connection headers in hs.
func connectionValues(dst [][]byte, hs iter.Seq2[[]byte, []byte]) [][]byte {
	for k, v := range hs {
		if named(k, connectionHeader) {
			dst = append(dst, v)
		}
	}
	return dst
}

// upgradeOf is the protocol a request asks to switch to, or nil when it
// asks for none.
func upgradeOf(h *fasthttp.RequestHeader) []byte {
	var upgrade []byte
	asked := false
	for k, v := range h.AllInOrder() {
		switch {
		case bytes.EqualFold(k, connectionHeader):
			asked = asked || listed(v, upgradeToken)
		case bytes.EqualFold(k, upgradeHeader):
			upgrade = v
		}
	}
	if !asked || len(upgrade) == 0 {
		return nil
	}
	return upgrade
}

// prepareRequest turns the client's request into the upstream's: it drops
// hop-by-hop headers, says who the client was, and gives the request its
// id, which it returns: the client's X-Request-Id when it sent a valid one
// (the first, of several), else a new one in buf. It drops any version header plan names, which
// only the proxy sets (see tellVersion).
func (p *Proxy) prepareRequest(ctx *fasthttp.RequestCtx, plan *route.Plan, buf *idBuf) []byte {
	h := &ctx.Request.Header
	var connBuf [4][]byte
	conn := connectionValues(connBuf[:0], h.AllInOrder())

	// Every X-Forwarded-For line the client sent, in any spelling, folds
	// into one list that ends with the client's address. The scheme and
	// host are ours to say: a client must not claim TLS or another name.
	var xffBuf [128]byte
	xff := xffBuf[:0]
	var keptBuf [32][]byte
	var delBuf [8][]byte
	kept, del := keptBuf[:0], delBuf[:0]
	// The client's id stays as it came when it is valid and alone; else
	// every line of it goes and one is set.
	var id, idName []byte
	idLines := 0
	version := plan.VersionHeader()
	// A trusted proxy's X-Forwarded-Proto and -Host pass as it set them,
	// and ours are not added beside them.
	trusted := p.trusts(ctx.RemoteIP())
	toldProto, toldHost := false, false
	for k, v := range h.AllInOrder() {
		switch {
		case hopByHopIn(conn, k):
			del = append(del, k)
		case named(k, xRequestID):
			idLines++
			if id == nil && validID(v) {
				id, idName = append(buf[:0], v...), k
			} else {
				del = append(del, k)
			}
		case version != nil && named(k, version):
			del = append(del, k)
		case named(k, xForwardedFor):
			if v = bytes.TrimSpace(v); len(v) > 0 {
				xff = append(append(xff, v...), ", "...)
			}
			del = append(del, k)
		case named(k, xForwardedProto), named(k, xForwardedHost):
			if !trusted {
				del = append(del, k)
				break
			}
			kept = append(kept, k)
			if named(k, xForwardedProto) {
				toldProto = true
			} else {
				toldHost = true
			}
		default:
			kept = append(kept, k)
		}
	}
	setID := id == nil || idLines > 1
	if setID && idName != nil {
		del = append(del, idName)
	}
	deleteInOrder(h, del, kept)
	if id == nil {
		id = p.ids.next(buf)
	}
	if setID {
		h.SetCanonical(xRequestID, id)
	}
	// The upstream connection is kept alive whatever the client asked.
	h.ResetConnectionClose()

	if ip, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		xff = ip.Unmap().AppendTo(xff)
	}
	h.SetCanonical(xForwardedFor, xff)
	switch {
	case toldProto:
	case ctx.IsTLS():
		h.SetCanonical(xForwardedProto, schemeHTTPS)
	default:
		h.SetCanonical(xForwardedProto, schemeHTTP)
	}
	if host := h.Host(); len(host) > 0 && !toldHost {
		h.SetCanonical(xForwardedHost, host)
	}
	return id
}

// deleteInOrder deletes the headers named in del from h, whose other
// headers are named in kept, in order. fasthttp deletes a header by moving
// the last one into its place, which reverses repeated lines of a name
// whose order is part of the message (RFC 9110 section 5.3): names that
// repeat are therefore set again, in their order, in the rare message that
// has them.
func deleteInOrder(h *fasthttp.RequestHeader, del, kept [][]byte) {
	if len(del) == 0 {
		return
	}
	var again [][]byte
	for i, k := range kept {
		if bytes.EqualFold(k, cookieHeader) {
			// The order of cookies carries no meaning (RFC 6265 section
			// 5.4), and setting them again would have fasthttp rewrite
			// them.
			continue
		}
		for _, k2 := range kept[i+1:] {
			if bytes.EqualFold(k, k2) {
				again = append(again, k)
				break
			}
		}
	}
	if len(again) == 0 {
		for _, k := range del {
			h.DelBytes(k)
		}
		return
	}
	type line struct{ k, v []byte }
	var lines []line
	for k, v := range h.AllInOrder() {
		for _, a := range again {
			if bytes.EqualFold(k, a) {
				lines = append(lines, line{bytes.Clone(k), bytes.Clone(v)})
				break
			}
		}
	}
	for _, k := range del {
		h.DelBytes(k)
	}
	for _, l := range lines {
		h.DelBytes(l.k)
	}
	for _, l := range lines {
		h.AddBytesKV(l.k, l.v)
	}
}

// copyResponseHeader gives dst the status and the end-to-end headers of
// src, in order. Whether the client connection stays open is our decision,
// not the upstream's, and the request id is the proxy's to send: the caller
// sets it. Building dst afresh, rather than copying src and
// deleting from the copy, keeps repeated lines in order (see deleteInOrder)
// and leaves dst with the server's defaults. Date is the one header
// fasthttp will not take: the proxy sends its own, as nginx does.
func copyResponseHeader(dst, src *fasthttp.ResponseHeader) {
	dst.SetStatusCode(src.StatusCode())
	if m := src.StatusMessage(); len(m) > 0 {
		dst.SetStatusMessage(m)
	}
	var connBuf [4][]byte
	conn := connectionValues(connBuf[:0], src.All())
	for k, v := range src.All() {
		if !hopByHopIn(conn, k) && !named(k, xRequestID) {
			dst.AddBytesKV(k, v)
		}
	}
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// SetAccessLog turns the access log on or off: one Info entry per request.
// It is off by default, since an SD card wears out under a line per request.
func (p *Proxy) SetAccessLog(on bool) { p.accessLog.Store(on) }

// upstreamKey is where the access log finds the upstream that answered.
const upstreamKey = "canaryd.upstream"

// logAccess writes one access-log entry. The query string is left out: it
// often carries tokens and personal data.
func (p *Proxy) logAccess(ctx *fasthttp.RequestCtx, start time.Time) {
	upstream, _ := ctx.UserValue(upstreamKey).(string)
	p.log.Info("request",
		"CLIENT", p.client(ctx),
		"METHOD", string(ctx.Method()),
		"PATH", string(ctx.Path()),
		"STATUS", ctx.Response.StatusCode(),
		"UPSTREAM", upstream,
		"REQUEST_ID", string(ctx.Response.Header.PeekBytes(xRequestID)),
		"DURATION_MS", float64(time.Since(start).Microseconds())/1000)
}
