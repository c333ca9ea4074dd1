package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// upstream is one [[upstream]] entry for a backend listening on addr, with
// the failure settings every test relies on: one failure takes it out for
// ten seconds.
func upstream(name string, role config.Role, weight int, addr string) config.Upstream {
	u, err := url.Parse("http://" + addr)
	if err != nil {
		panic(err)
	}
	return config.Upstream{Name: name, URL: u, Weight: weight, Role: role,
		MaxFails: 1, FailTimeout: 10 * time.Second}
}

func stable(name string, weight int, addr string) config.Upstream {
	return upstream(name, config.Stable, weight, addr)
}

func canary(name string, weight int, addr string) config.Upstream {
	return upstream(name, config.Canary, weight, addr)
}

// rig is a running proxy on loopback in front of the given upstreams.
type rig struct {
	addr   string
	proxy  *proxy.Proxy
	router *route.Router
}

// defaults are generous limits for tests that do not exercise them, so a
// slow machine never trips one by accident.
var defaults = proxy.Options{
	ConnectTimeout: 5 * time.Second,
	ReadTimeout:    30 * time.Second,
	IdleTimeout:    75 * time.Second,
	UpstreamIdle:   60 * time.Second,
}

// startProxy builds the routing table for ups, as the daemon does, and
// serves it on a fresh loopback port until the test ends. Zero fields of
// opts take the values of defaults; without a Logger, the proxy logs
// nothing.
func startProxy(t testing.TB, opts proxy.Options, ups ...config.Upstream) *rig {
	t.Helper()
	return startProxyPolicy(t, opts, config.CanaryPolicy{}, ups...)
}

// versioned is the canary policy of tests of the version header: the
// configuration's defaults for it.
var versioned = config.CanaryPolicy{Version: "v2", VersionHeader: "X-Canary-Version"}

// startProxyPolicy is startProxy with the canary policy pol.
func startProxyPolicy(t testing.TB, opts proxy.Options, pol config.CanaryPolicy, ups ...config.Upstream) *rig {
	t.Helper()
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = defaults.ConnectTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = defaults.ReadTimeout
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = defaults.IdleTimeout
	}
	if opts.UpstreamIdle == 0 {
		opts.UpstreamIdle = defaults.UpstreamIdle
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// PROXY_TEST_LOG=1 shows the proxy's debug log when a test puzzles.
	if os.Getenv("PROXY_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	// The config's default window: a zero one is a single 100 ms bucket,
	// which a request can leave before the test reads it (on a slow
	// machine, or a bucket's end falling between the two).
	if pol.Window == 0 {
		pol.Window = 30 * time.Second
	}
	cfg := &config.Config{Upstreams: ups, Canary: pol}
	mode := state.Canary
	if !cfg.HasCanary() {
		mode = state.NoCanary
	}
	r := &rig{router: route.NewRouter(route.NewPlan(cfg, mode, nil))}
	r.proxy = proxy.New(r.router, opts)
	r.proxy.Prepare(r.router.Plan())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- r.proxy.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.proxy.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return r
}

func (r *rig) url(path string) string { return "http://" + r.addr + path }

// upstream is the named upstream of the current table.
func (r *rig) upstream(t testing.TB, name string) *route.Upstream {
	t.Helper()
	for _, u := range r.router.Plan().Upstreams {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no upstream %q", name)
	return nil
}

func (r *rig) errors(t testing.TB, name string) uint64 {
	t.Helper()
	return r.upstream(t, name).Stats.Errors()
}

func (r *rig) requests(t testing.TB, name string) uint64 {
	t.Helper()
	return r.upstream(t, name).Stats.Requests()
}

func (r *rig) healthy(t testing.TB, name string) bool {
	t.Helper()
	return r.router.Plan().Healthy(r.upstream(t, name), time.Now())
}

// failures counts the attempts on the named upstream that got no whole
// answer (refused, reset, timed out, before the headers or in the body).
func (r *rig) failures(t testing.TB, name string) uint64 {
	t.Helper()
	return r.upstream(t, name).Stats.Classes[0].Load()
}

// answers counts the named upstream's answers of status class c (5 for
// 5xx).
func (r *rig) answers(t testing.TB, name string, c int) uint64 {
	t.Helper()
	return r.upstream(t, name).Stats.Classes[c].Load()
}

// idle waits until no request is in flight on any upstream, so that the
// accounting of the last attempt is done.
func (r *rig) idle(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, "requests in flight to finish", func() bool {
		for _, u := range r.router.Plan().Upstreams {
			if u.Stats.InFlight() != 0 {
				return false
			}
		}
		return true
	})
}

// rawBackend accepts TCP connections on loopback and hands each to serve,
// for upstreams that misbehave in ways net/http never would. Connections
// still open when the test ends are closed.
func rawBackend(t testing.TB, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// newClient is a keep-alive HTTP client of its own, so that tests do not
// share connections.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends req and returns the status and the whole body.
func do(t testing.TB, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, string(body)
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func post(t testing.TB, c *http.Client, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// rawConn is a client connection to addr for tests that speak HTTP by
// hand; every read and write on it fails after 10 s, and it is closed when
// the test ends.
func rawConn(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// rawRequest writes a request exactly as given on a new connection to addr
// and reads the response head and body.
func rawRequest(t testing.TB, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(body)
}

// gate holds back handlers until it opens. Tests defer open, so that a
// failing test never leaves a handler waiting (and a server's Close with it).
type gate struct {
	c    chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{c: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.c) }) }

func (g *gate) wait() { <-g.c }

// readHead reads an HTTP request head from br and answers nothing.
func readHead(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, fmt.Errorf("reading the request: %w", err)
	}
	return req, nil
}
