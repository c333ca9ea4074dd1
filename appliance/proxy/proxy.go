// Package proxy is canaryd's data plane: an HTTP/1.1 reverse proxy that asks
// the router for an upstream per request and streams bodies both ways.
//
// The engine is fasthttp, chosen for its CPU cost per request (close to
// nginx's, about a fifth of net/http's reverse proxy on the same load). It
// stays inside this package: the rest of the appliance sees New, Serve,
// Prepare, Retire and Shutdown.
package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// Options are the data plane's limits.
type Options struct {
	ConnectTimeout time.Duration // dialing an upstream
	// ReadTimeout bounds the wait for each read from an upstream (its
	// response headers, then every piece of its body), and each write to it,
	// as nginx's proxy_read_timeout and proxy_send_timeout do.
	ReadTimeout  time.Duration
	IdleTimeout  time.Duration // an idle client keep-alive connection
	UpstreamIdle time.Duration // an idle pooled upstream connection
	Logger       *slog.Logger
	// Observe, if set, is called at the end of every attempt on an upstream.
	Observe func(u *route.Upstream, o Outcome)
}

// Outcome is how one attempt on an upstream ended.
type Outcome struct {
	Status   int           // the upstream's status code; 0 when it gave none
	Failed   bool          // refused, reset or timed out: counts toward max_fails
	Duration time.Duration // until the response headers (or the failure)
}

// Error reports whether the outcome counts as an error of the upstream for
// the canary verdict: a failure or a 5xx answer.
func (o Outcome) Error() bool { return o.Failed || o.Status >= 500 }

// Proxy is the data plane.
type Proxy struct {
	router *route.Router
	opts   Options
	log    *slog.Logger
	srv    *fasthttp.Server

	mu    sync.Mutex
	pools map[string]*pool // by upstream URL
}

// New returns a proxy that routes with r.
func New(r *route.Router, opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Proxy{router: r, opts: opts, log: opts.Logger, pools: map[string]*pool{}}
	p.srv = &fasthttp.Server{
		Handler:                       p.serve,
		ErrorHandler:                  p.badRequest,
		IdleTimeout:                   opts.IdleTimeout,
		StreamRequestBody:             true,
		MaxRequestBodySize:            64 << 10, // buffered before streaming starts
		ReadBufferSize:                16 << 10, // the longest request head accepted
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{opts.Logger},
	}
	return p
}

// Serve accepts client connections on ln until Shutdown.
func (p *Proxy) Serve(ln net.Listener) error { return p.srv.Serve(ln) }

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// and closes the upstream pools.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.srv.ShutdownWithContext(ctx)
	p.mu.Lock()
	for k, pl := range p.pools {
		pl.hc.CloseIdleConnections()
		delete(p.pools, k)
	}
	p.mu.Unlock()
	return err
}

// Prepare gives every upstream of t its connection pool, reusing the pool of
// an upstream with the same URL in the running table, so that a reload keeps
// warm connections. Call it before publishing t.
func (p *Proxy) Prepare(t *route.Table) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range t.Upstreams {
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
func (p *Proxy) Retire(old, current *route.Table) {
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
	hc   *fasthttp.HostClient
	tls  bool
	addr string
	dial func(addr string) (net.Conn, error)
}

func (pl *pool) Close() {
	pl.hc.MaxIdleConnDuration = time.Nanosecond
	pl.hc.CloseIdleConnections()
}

func (p *Proxy) newPool(u *route.Upstream) *pool {
	pl := &pool{tls: u.URL.Scheme == "https", addr: u.URL.Host}
	dialer := &net.Dialer{Timeout: p.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	pl.dial = func(addr string) (net.Conn, error) {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			return nil, &dialError{err}
		}
		return &deadlineConn{Conn: c, timeout: p.opts.ReadTimeout}, nil
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

// retryStaleConn lets fasthttp retry once, on a new connection to the same
// upstream, a request whose pooled keep-alive connection turned out to be
// closed by the upstream before it answered. That is the ordinary race of
// keep-alive, not a failure of the upstream. A request body that was
// streamed is never replayed (fasthttp checks that before asking).
func retryStaleConn(req *fasthttp.Request, attempts int, err error) (bool, bool) {
	var de *dialError
	if errors.As(err, &de) || !idempotent(req) {
		return false, false
	}
	return false, errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF)
}

// dialError marks a failure to connect: nothing was sent, so any request
// may go to another upstream.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// deadlineConn gives every read and write its own deadline, so a timeout
// bounds the silence between two reads rather than a whole response.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if c.timeout > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if c.timeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	return c.Conn.Write(b)
}

// serve proxies one request.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	if ctx.Request.Header.ConnectionUpgrade() {
		p.serveUpgrade(ctx)
		return
	}
	clientClose := ctx.Request.Header.ConnectionClose()
	prepareRequest(ctx)

	tab := p.router.Table()
	var tried swrr.Set
	u := tab.Pick(&tried, time.Now())
	for retried := false; ; retried = true {
		if u == nil {
			p.fail(ctx, fasthttp.StatusBadGateway, "no upstream is available")
			return
		}
		err := p.attempt(ctx, tab, u)
		if err == nil {
			break
		}
		if retried || !retryable(&ctx.Request, err) {
			p.failWith(ctx, err)
			return
		}
		p.log.Debug("retrying on another upstream", "UPSTREAM", u.Name, "error", err.Error())
		u = tab.PickRetry(&tried, time.Now())
	}
	cleanResponse(&ctx.Response)
	if clientClose {
		ctx.SetConnectionClose()
	}
}

// attempt sends the request to u once and accounts for the outcome.
func (p *Proxy) attempt(ctx *fasthttp.RequestCtx, tab *route.Table, u *route.Upstream) error {
	pl := u.Transport.(*pool)
	if pl.tls {
		ctx.Request.URI().SetScheme("https")
	} else {
		ctx.Request.URI().SetScheme("http")
	}
	u.Stats.InFlight.Add(1)
	start := time.Now()
	err := pl.hc.Do(&ctx.Request, &ctx.Response)
	end := time.Now()
	u.Stats.InFlight.Add(-1)

	o := Outcome{Duration: end.Sub(start)}
	switch {
	case err == nil:
		o.Status = ctx.Response.StatusCode()
	case clientFault(ctx, err):
		// The client went away or sent a broken body: nobody's failure.
		tab.Done(u, false, end)
		return err
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		// Our own pool limit, not the upstream's doing.
	default:
		o.Failed = true
	}
	p.account(tab, u, o, end)
	return err
}

// account records the outcome of one attempt on u.
func (p *Proxy) account(tab *route.Table, u *route.Upstream, o Outcome, end time.Time) {
	u.Stats.Requests.Add(1)
	if o.Error() {
		u.Stats.Errors.Add(1)
	}
	tab.Done(u, o.Failed, end)
	if p.opts.Observe != nil {
		p.opts.Observe(u, o)
	}
}

// retryable reports whether a request that met err may go to another
// upstream: always when the connection was never made, otherwise only for
// an idempotent request whose body was not streamed (so nothing of it is
// lost) and a failure that is not a wait for an answer that may yet come.
func retryable(req *fasthttp.Request, err error) bool {
	var de *dialError
	switch {
	case errors.As(err, &de):
		return true
	case isTimeout(err):
		return false
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

// clientFault reports whether err came from the client's side: its
// connection broke, or it ended its request body early.
func clientFault(ctx *fasthttp.RequestCtx, err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Addr != nil && op.Addr.String() == ctx.RemoteAddr().String()
}

func (p *Proxy) failWith(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case clientFault(ctx, err):
		ctx.SetConnectionClose()
		p.fail(ctx, fasthttp.StatusBadRequest, "the request body ended early")
	case isTimeout(err):
		p.fail(ctx, fasthttp.StatusGatewayTimeout, "the upstream did not answer in time")
	default:
		p.fail(ctx, fasthttp.StatusBadGateway, "the upstream failed")
	}
}

func (p *Proxy) fail(ctx *fasthttp.RequestCtx, code int, why string) {
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(code)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString(fasthttp.StatusMessage(code) + ": " + why + "\n")
}

func (p *Proxy) badRequest(ctx *fasthttp.RequestCtx, err error) {
	ctx.SetConnectionClose()
	p.fail(ctx, fasthttp.StatusBadRequest, "malformed request")
	p.log.Debug("malformed request", "client", ctx.RemoteAddr().String(), "error", err.Error())
}

// hopByHop are the headers that belong to one connection, not the message
// (RFC 9110 section 7.6.1), plus the non-standard ones proxies also drop.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect",
}

// prepareRequest turns the client's request into the upstream's: it drops
// hop-by-hop headers and says who the client was.
func prepareRequest(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	for _, name := range connectionTokens(h.Peek("Connection")) {
		h.Del(name)
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	// The upstream connection is kept alive whatever the client asked.
	h.ResetConnectionClose()

	ip := ctx.RemoteIP().String()
	if prior := h.Peek("X-Forwarded-For"); len(prior) > 0 {
		h.Set("X-Forwarded-For", string(prior)+", "+ip)
	} else {
		h.Set("X-Forwarded-For", ip)
	}
	if ctx.IsTLS() {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
	h.SetBytesV("X-Forwarded-Host", h.Host())
}

// cleanResponse drops the upstream's hop-by-hop headers. Whether the client
// connection stays open is our decision, not the upstream's.
func cleanResponse(r *fasthttp.Response) {
	h := &r.Header
	for _, name := range connectionTokens(h.Peek("Connection")) {
		h.Del(name)
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	h.ResetConnectionClose()
}

// connectionTokens are the header names listed in a Connection header.
func connectionTokens(v []byte) []string {
	var names []string
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 && !bytes.EqualFold(tok, []byte("close")) && !bytes.EqualFold(tok, []byte("keep-alive")) {
			names = append(names, string(tok))
		}
	}
	return names
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}
