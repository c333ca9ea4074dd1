package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

func TestKeepAliveToUpstreamIsReused(t *testing.T) {
	tests := []struct {
		name string
		// client is how the client talks to the proxy; the proxy's own
		// connections to the upstream must not depend on it.
		client func(t testing.TB) *http.Client
	}{
		{"keep-alive client", newClient},
		{"a new client connection per request", func(t testing.TB) *http.Client {
			c := newClient(t)
			c.Transport.(*http.Transport).DisableKeepAlives = true
			return c
		}},
		{"client asks to close", func(t testing.TB) *http.Client {
			c := newClient(t)
			c.Transport = closingTransport{c.Transport}
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testkit.StartBackend(t, "s")
			r := startProxy(t, defaults, stable("s", 1, b.Addr()))
			c := tt.client(t)
			for range 20 {
				if status, body := get(t, c, r.url("/")); status != http.StatusOK || body != "s" {
					t.Fatalf("got %d %q", status, body)
				}
			}
			// Sequential requests need one connection; allow a second for
			// the race of a connection going back to the pool.
			if n := b.Conns(); n > 2 {
				t.Errorf("the upstream saw %d connections for 20 sequential requests, want 1 or 2", n)
			}
		})
	}
}

// closingTransport sends Connection: close on every request, keeping the
// client connection open until the proxy closes it.
type closingTransport struct{ http.RoundTripper }

func (c closingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Connection", "close")
	return c.RoundTripper.RoundTrip(req)
}

func TestIdleClientConnectionsAreClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	tests := []struct {
		name     string
		first    string // what the client sends before it goes quiet
		answered bool   // first is a whole request, which gets its answer
	}{
		{"after a request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		// A client that never gets to a request holds a connection as
		// much as an idle one, and is no more welcome to keep it.
		{"before any request", "", false},
		{"in the middle of a request head", "GET / HTTP/1.1\r\nHost: x\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startProxy(t, proxy.Options{IdleTimeout: idle}, stable("s", 1, testkit.StartBackend(t, "s").Addr()))
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			io.WriteString(c, tt.first)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			if tt.answered {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				start = time.Now()
			}
			// The proxy closes the connection: the read ends, with EOF or
			// after whatever 4xx it chose to say first.
			if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the idle connection was still open after 10s")
			}
			// The proxy's clock starts a little before the client's, when
			// it has sent the response.
			if d := time.Since(start); d < idle/2 {
				t.Errorf("closed after %v, well before the idle timeout of %v", d, idle)
			}
		})
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	started, release := make(chan struct{}), newGate()
	defer release.open()
	b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		release.wait()
		io.WriteString(w, "finished")
	}))
	r := startProxy(t, defaults, stable("s", 1, b.Addr()))

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := newClient(t).Get(r.url("/slow"))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(body), err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- r.proxy.Shutdown(ctx)
	}()
	testkit.Eventually(t, 10*time.Second, "new connections to be refused", func() bool {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}

	release.open()
	select {
	case res := <-done:
		if res.err != nil || res.status != http.StatusOK || res.body != "finished" {
			t.Errorf("the request in flight got %d %q %v, want 200 finished", res.status, res.body, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight did not finish")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last request finished")
	}
}

func TestRetireClosesRemovedUpstreamPools(t *testing.T) {
	started, release := make(chan struct{}, 1), newGate()
	defer release.open()
	old := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			release.wait()
		}
		io.WriteString(w, "old")
	}))
	r := startProxy(t, defaults, stable("old", 1, old.Addr()))

	// One connection busy with a slow request, and one idle in the pool.
	slow := make(chan string, 1)
	go func() {
		resp, err := newClient(t).Get(r.url("/slow"))
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		slow <- string(body)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach the upstream")
	}
	if status, body := get(t, newClient(t), r.url("/")); status != http.StatusOK || body != "old" {
		t.Fatalf("got %d %q", status, body)
	}
	if n := old.Conns(); n != 2 {
		t.Fatalf("the upstream has %d connections, want 2", n)
	}

	cfg := &config.Config{Upstreams: []config.Upstream{stable("new", 1, testkit.StartBackend(t, "new").Addr())}}
	next := route.NewPlan(cfg, state.NoCanary, r.router.Plan())
	r.proxy.Prepare(next)
	r.proxy.Retire(r.router.Publish(next), next)

	testkit.Eventually(t, 5*time.Second, "the idle connection to the retired upstream to close", func() bool {
		return old.Closed() >= 1
	})
	if _, body := get(t, newClient(t), r.url("/")); body != "new" {
		t.Errorf("a new request went to %q after the reload, want new", body)
	}
	release.open()
	select {
	case body := <-slow:
		if body != "old" {
			t.Errorf("the request in flight on the retired upstream got %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight on the retired upstream did not finish")
	}
	testkit.Eventually(t, 5*time.Second, "the busy connection to the retired upstream to close once done", func() bool {
		return old.Closed() >= 2
	})
}
