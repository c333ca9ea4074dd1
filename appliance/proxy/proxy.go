// Package proxy is canaryd's data plane: an HTTP/1.1 reverse proxy that asks
// the router for an upstream per request and streams bodies both ways.
//
// The engine is fasthttp, chosen for its CPU cost per request (close to
// nginx's, about a fifth of net/http's reverse proxy on the same load). It
// stays inside this package: the rest of the appliance sees New, Serve,
// Prepare, Retire and Shutdown, and two switches, SetAccessLog and
// SetJournal.
//
// A request's way through the files:
//
//   - client.go, conns.go, strict.go: the client's connection, its limits
//     (max_connections, the head's deadline) and the head's strict parsing;
//   - request.go: the request's life, one for plain requests and upgrades:
//     the pick, the attempts and their retry, the accounting, the journal;
//   - headers.go, forwarded.go, reqid.go: what goes to the upstream and
//     back (hop-by-hop headers, X-Forwarded-*, X-Request-Id);
//   - pool.go: the upstreams' keep-alive pools, kept across reloads by
//     origin, and the check of a connection that sat idle;
//   - relay.go: the upstream's answer streamed to the client, and the
//     client's body to the upstream; upgrade.go: a tunnel's attempt;
//   - failures.go: what the client gets when an upstream fails it;
//   - rawio_linux.go, deadline.go: the sockets' reads and writes, measured
//     against nginx (see rawIO);
//   - accesslog.go, record.go: the access log and the canary journal's
//     records.
package proxy

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/route"
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

	// pools are the upstreams' connection pools by origin, read without a
	// lock on the request path and replaced whole by Prepare and Retire,
	// one at a time (mu).
	mu    sync.Mutex
	pools atomic.Pointer[map[string]*pool]
}

// New returns a proxy that routes with r.
func New(r *route.Router, opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Proxy{router: r, opts: opts, log: opts.Logger, probePath: newProbePath(), ids: newIDs(),
		conns: newConns(opts.MaxConns)}
	p.pools.Store(&map[string]*pool{})
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

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// and closes the upstream pools.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.srv.ShutdownWithContext(ctx)
	p.mu.Lock()
	for _, pl := range *p.pools.Swap(&map[string]*pool{}) {
		pl.Close()
	}
	p.mu.Unlock()
	return err
}
