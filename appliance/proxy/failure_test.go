package proxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// echo is a backend that answers with its name and the request body it read.
func echo(t testing.TB, name string, configure ...func(*http.Server)) *testkit.Server {
	return testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s:%s", name, body)
	}), configure...)
}

// resetting is an upstream that reads a request head and resets the
// connection instead of answering.
func resetting(t testing.TB) string {
	return rawBackend(t, func(c *net.TCPConn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		c.SetLinger(0)
	})
}

func TestRefusedCanaryIsRetriedOnStable(t *testing.T) {
	// The canary comes first with an equal weight, so the first request
	// picks it.
	setup := func(t *testing.T) *rig {
		return startProxy(t, defaults,
			canary("canary", 1, testkit.FreeAddr(t)),
			stable("stable", 1, echo(t, "stable").Addr()))
	}
	t.Run("GET", func(t *testing.T) {
		r := setup(t)
		c := newClient(t)
		for i := range 20 {
			if status, body := get(t, c, r.url("/")); status != http.StatusOK || body != "stable:" {
				t.Fatalf("request %d: got %d %q, want 200 from stable", i+1, status, body)
			}
		}
		// One failure takes the canary out for fail_timeout: only the first
		// request tried it.
		if n := r.requests(t, "canary"); n != 1 {
			t.Errorf("the canary was tried %d times, want once", n)
		}
		if n := r.errors(t, "canary"); n != 1 {
			t.Errorf("the canary counted %d errors, want 1", n)
		}
		if r.healthy(t, "canary") {
			t.Error("the refusing canary is still in the rotation")
		}
		if n := r.failures(t, "canary"); n != 1 {
			t.Errorf("the canary counted %d failures, want 1", n)
		}
		if n := r.errors(t, "stable"); n != 0 {
			t.Errorf("stable counted %d errors", n)
		}
	})
	t.Run("POST", func(t *testing.T) {
		// Nothing of a request reaches an upstream that refuses the
		// connection, so any request may go to another one.
		r := setup(t)
		status, body := post(t, newClient(t), r.url("/"), "the body")
		if status != http.StatusOK || body != "stable:the body" {
			t.Fatalf("got %d %q, want the body echoed by stable", status, body)
		}
		if n := r.errors(t, "canary"); n != 1 {
			t.Errorf("the canary counted %d errors, want 1", n)
		}
	})
}

func TestResetCanaryIsRetriedForIdempotentOnly(t *testing.T) {
	setup := func(t *testing.T) *rig {
		return startProxy(t, defaults,
			canary("canary", 1, resetting(t)),
			stable("stable", 1, echo(t, "stable").Addr()))
	}
	t.Run("GET", func(t *testing.T) {
		r := setup(t)
		if status, body := get(t, newClient(t), r.url("/")); status != http.StatusOK || body != "stable:" {
			t.Fatalf("got %d %q, want 200 from stable", status, body)
		}
		if n := r.errors(t, "canary"); n != 1 {
			t.Errorf("the canary counted %d errors, want 1", n)
		}
		if r.healthy(t, "canary") {
			t.Error("the resetting canary is still in the rotation")
		}
	})
	t.Run("POST", func(t *testing.T) {
		// The body went to the canary: it cannot be sent again.
		r := setup(t)
		status, body := post(t, newClient(t), r.url("/"), "the body")
		if status != http.StatusBadGateway {
			t.Fatalf("got %d %q, want 502", status, body)
		}
		if n := r.requests(t, "stable"); n != 0 {
			t.Errorf("the POST was sent again, to stable")
		}
		if n := r.errors(t, "canary"); n != 1 {
			t.Errorf("the canary counted %d errors, want 1", n)
		}
	})
}

func Test5xxIsPassedThroughNotRetried(t *testing.T) {
	r := startProxy(t, defaults,
		canary("canary", 1, testkit.StartBackend(t, "canary", testkit.Status(http.StatusInternalServerError)).Addr()),
		stable("stable", 1, testkit.StartBackend(t, "stable").Addr()))
	c := newClient(t)
	if status, body := get(t, c, r.url("/")); status != http.StatusInternalServerError || body != "canary" {
		t.Fatalf("got %d %q, want the canary's 500", status, body)
	}
	if n := r.requests(t, "stable"); n != 0 {
		t.Error("the 500 was retried on stable")
	}
	if n := r.errors(t, "canary"); n != 1 {
		t.Errorf("the canary counted %d errors, want 1", n)
	}
	if n5, nf := r.answers(t, "canary", 5), r.failures(t, "canary"); n5 != 1 || nf != 0 {
		t.Errorf("the canary counted %d 5xx answers and %d failures, want one 500 that is an error but no failure", n5, nf)
	}
	// A 5xx does not count toward max_fails: the canary keeps its share.
	if !r.healthy(t, "canary") {
		t.Error("a 500 took the canary out of the rotation")
	}
	seen := map[string]int{}
	for range 4 {
		_, body := get(t, c, r.url("/"))
		seen[body]++
	}
	if seen["canary"] != 2 || seen["stable"] != 2 {
		t.Errorf("after the 500: %v, want 2 each", seen)
	}
}

func TestNothingLeftGives502(t *testing.T) {
	r := startProxy(t, defaults,
		canary("canary", 1, testkit.FreeAddr(t)),
		stable("stable", 1, testkit.FreeAddr(t)))
	c := newClient(t)
	// The first request meets both failures; later ones find both taken
	// out.
	for i := range 3 {
		resp, err := c.Get(r.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("request %d: status %d, want 502", i+1, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("request %d: Content-Type %q, want text/plain", i+1, ct)
		}
		if len(body) == 0 || len(body) > 200 {
			t.Errorf("request %d: body %q, want a short text", i+1, body)
		}
	}
	for _, name := range []string{"canary", "stable"} {
		if n := r.errors(t, name); n == 0 {
			t.Errorf("%s counted no error", name)
		}
	}
}

func TestSlowUpstreamTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	opts := proxy.Options{ReadTimeout: timeout}
	t.Run("alone", func(t *testing.T) {
		r := startProxy(t, opts, stable("slow", 1, testkit.StartBackend(t, "slow", testkit.Delay(2*time.Second)).Addr()))
		start := time.Now()
		status, body := get(t, newClient(t), r.url("/"))
		if status != http.StatusGatewayTimeout {
			t.Fatalf("got %d %q, want 504", status, body)
		}
		if d := time.Since(start); d >= 2*time.Second {
			t.Errorf("the 504 came after %v, when the upstream answered", d)
		}
		if n := r.errors(t, "slow"); n != 1 {
			t.Errorf("the slow upstream counted %d errors, want 1", n)
		}
		if n := r.failures(t, "slow"); n != 1 {
			t.Errorf("the slow upstream counted %d failures, want 1", n)
		}
	})
	t.Run("idempotent request retried on stable", func(t *testing.T) {
		r := startProxy(t, opts,
			canary("canary", 1, testkit.StartBackend(t, "canary", testkit.Delay(2*time.Second)).Addr()),
			stable("stable", 1, testkit.StartBackend(t, "stable").Addr()))
		if status, body := get(t, newClient(t), r.url("/")); status != http.StatusOK || body != "stable" {
			t.Fatalf("got %d %q, want 200 from stable", status, body)
		}
		if n := r.errors(t, "canary"); n != 1 {
			t.Errorf("the canary counted %d errors, want 1", n)
		}
		if r.healthy(t, "canary") {
			t.Error("the timed out canary is still in the rotation")
		}
	})
	t.Run("POST not retried", func(t *testing.T) {
		r := startProxy(t, opts,
			canary("canary", 1, testkit.StartBackend(t, "canary", testkit.Delay(2*time.Second)).Addr()),
			stable("stable", 1, echo(t, "stable").Addr()))
		if status, body := post(t, newClient(t), r.url("/"), "once"); status != http.StatusGatewayTimeout {
			t.Fatalf("got %d %q, want 504", status, body)
		}
		if n := r.requests(t, "stable"); n != 0 {
			t.Error("the POST was sent again, to stable")
		}
	})
	t.Run("slow but steady body is not cut", func(t *testing.T) {
		// The timeout bounds each wait, not the whole response, as nginx's
		// proxy_read_timeout does.
		const pieces = 10
		b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			for i := range pieces {
				fmt.Fprintf(w, "piece %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(timeout / 3)
			}
		}))
		r := startProxy(t, opts, stable("steady", 1, b.Addr()))
		status, body := get(t, newClient(t), r.url("/"))
		if status != http.StatusOK || strings.Count(body, "piece") != pieces {
			t.Fatalf("got %d %q, want all %d pieces", status, body, pieces)
		}
		if n := r.errors(t, "steady"); n != 0 {
			t.Errorf("the steady upstream counted %d errors", n)
		}
	})
}

func TestClientGoingAwayIsNobodysFailure(t *testing.T) {
	const declared = 1 << 20
	tests := []struct {
		name  string
		sent  int  // of the declared body, before the client goes
		reset bool // the client resets the connection rather than closing it
		stall bool // the client keeps the connection but sends no more
	}{
		{"closes after 10 KiB", 10 << 10, false, false},
		{"closes after 256 KiB", 256 << 10, false, false},
		{"resets after 256 KiB", 256 << 10, true, false},
		// The wait for the rest is bounded by the idle timeout, as
		// nginx's client_body_timeout bounds it.
		{"stalls after 256 KiB", 256 << 10, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got atomic.Int64
			ended := make(chan error, 1)
			b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				buf := make([]byte, 4<<10)
				var err error
				for err == nil {
					var n int
					n, err = r.Body.Read(buf)
					got.Add(int64(n))
				}
				ended <- err
			}))
			r := startProxy(t, proxy.Options{IdleTimeout: 300 * time.Millisecond},
				stable("stable", 1, b.Addr()),
				canary("canary", 1, testkit.StartBackend(t, "canary").Addr()))

			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", declared)
			if _, err := c.Write(bytes.Repeat([]byte("x"), tt.sent)); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "the upstream to receive what the client sent", func() bool {
				return got.Load() == int64(tt.sent)
			})
			switch {
			case tt.stall:
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("the stalled client got no answer: %v", err)
				}
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("the stalled client got %d, want 408", resp.StatusCode)
				}
			case tt.reset:
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			default:
				c.Close()
			}

			select {
			case err := <-ended:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("the upstream's body ended with %v, want it cut short", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream was left waiting for the rest of the body")
			}
			r.idle(t)
			if n := r.errors(t, "stable"); n != 0 {
				t.Errorf("the upstream counted %d errors for the client's going away", n)
			}
			if n := r.failures(t, "stable"); n != 0 {
				t.Errorf("the upstream counted %d failures for the client's going away", n)
			}
			if !r.healthy(t, "stable") {
				t.Error("the client's going away took the upstream out of the rotation")
			}
		})
	}
}

// An upstream may close a keep-alive connection right after an answer,
// without saying so. The next request on it is retried on a new connection:
// the client sees nothing and the upstream is not blamed.
func TestStaleKeepAliveConnectionIsRetriedSilently(t *testing.T) {
	oneShot := func(t *testing.T) string {
		return rawBackend(t, func(c *net.TCPConn) {
			if _, err := readHead(bufio.NewReader(c)); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
	}
	r := startProxy(t, defaults, stable("a", 1, oneShot(t)), canary("b", 1, oneShot(t)))
	c := newClient(t)
	for i := range 30 {
		if status, body := get(t, c, r.url("/")); status != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: got %d %q", i+1, status, body)
		}
	}
	for _, name := range []string{"a", "b"} {
		if n := r.errors(t, name); n != 0 {
			t.Errorf("%s counted %d errors", name, n)
		}
		if !r.healthy(t, name) {
			t.Errorf("%s was taken out of the rotation", name)
		}
	}
}

// An upstream that closes idle keep-alive connections after a while (Node's
// 5 s, gunicorn's 2 s) leaves pooled connections that are already closed.
// Requests of every method after such a pause go through, and the upstream
// is not blamed.
func TestUpstreamIdleTimeoutIsNoFailure(t *testing.T) {
	b := echo(t, "s", func(s *http.Server) { s.IdleTimeout = 200 * time.Millisecond })
	r := startProxy(t, defaults, stable("s", 1, b.Addr()), canary("c", 0, testkit.StartBackend(t, "c").Addr()))
	c := newClient(t)
	for i := range 3 {
		if status, body := post(t, c, r.url("/"), "hello"); status != http.StatusOK || body != "s:hello" {
			t.Fatalf("POST %d: got %d %q", i+1, status, body)
		}
		testkit.Eventually(t, 10*time.Second, "the upstream to close the idle connection", func() bool {
			return b.Closed() == int64(i+1)
		})
	}
	if n := r.errors(t, "s"); n != 0 {
		t.Errorf("the upstream counted %d errors", n)
	}
}

// A stable upstream that refuses is taken out of the rotation like any
// other while the canary serves: requests stop paying for its failures.
func TestRefusedStableIsTakenOut(t *testing.T) {
	r := startProxy(t, defaults,
		stable("stable", 1, testkit.FreeAddr(t)),
		canary("canary", 1, testkit.StartBackend(t, "canary").Addr()))
	c := newClient(t)
	for i := range 10 {
		if status, body := get(t, c, r.url("/")); status != http.StatusOK || body != "canary" {
			t.Fatalf("request %d: got %d %q, want 200 from the canary", i+1, status, body)
		}
	}
	if n := r.requests(t, "stable"); n != 1 {
		t.Errorf("the refusing stable was tried %d times in 10 requests, want once", n)
	}
	if r.healthy(t, "stable") {
		t.Error("the refusing stable is still in the rotation")
	}
}

// An upstream that answers something that is not HTTP has failed: the
// client gets a 502 and the upstream is blamed.
func TestGarbageFromUpstreamIs502(t *testing.T) {
	addr := rawBackend(t, func(c *net.TCPConn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "this is not HTTP\r\n\r\n")
	})
	r := startProxy(t, defaults, stable("garbage", 1, addr))
	if status, body := get(t, newClient(t), r.url("/")); status != http.StatusBadGateway {
		t.Errorf("got %d %q, want 502", status, body)
	}
	if n := r.errors(t, "garbage"); n != 1 {
		t.Errorf("the upstream counted %d errors, want 1", n)
	}
}

// Requests the proxy cannot read are answered with the status that says
// why, and never reach an upstream.
func TestUnreadableRequests(t *testing.T) {
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"malformed", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", http.StatusBadRequest},
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 32<<10) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testkit.StartBackend(t, "s")
			r := startProxy(t, defaults, stable("s", 1, b.Addr()))
			resp, _ := rawRequest(t, r.addr, tt.request)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if n := b.Conns(); n != 0 {
				t.Error("the request reached the upstream")
			}
		})
	}
}

// A client that asks before sending its body (Expect: 100-continue) gets
// the go-ahead from the proxy, and the upstream gets the body.
func TestExpectContinue(t *testing.T) {
	r := startProxy(t, defaults, stable("s", 1, echo(t, "s").Addr()))
	c := newClient(t)
	c.Transport.(*http.Transport).ExpectContinueTimeout = 10 * time.Second
	req, err := http.NewRequest(http.MethodPut, r.url("/"), strings.NewReader("the body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	if status, body := do(t, c, req); status != http.StatusOK || body != "s:the body" {
		t.Errorf("got %d %q", status, body)
	}
}

// A client that stops reading a response is given up on after the idle
// timeout, as nginx's send_timeout does: it must not hold the upstream
// connection for good.
func TestStalledDownloadIsCut(t *testing.T) {
	ended := make(chan error, 1)
	b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, err := io.Copy(w, payload(5, bodySize))
		ended <- err
	}))
	r := startProxy(t, proxy.Options{IdleTimeout: 300 * time.Millisecond},
		stable("s", 1, b.Addr()), canary("c", 0, testkit.StartBackend(t, "c").Addr()))
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client asks and then reads nothing.
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the upstream sent the whole body to a client that read none of it")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream was still sending to a client that stopped reading")
	}
	r.idle(t)
	if n := r.errors(t, "s"); n != 0 {
		t.Errorf("the upstream counted %d errors for the client's stall", n)
	}
	if !r.healthy(t, "s") {
		t.Error("the client's stall took the upstream out of the rotation")
	}
}
