package proxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// misbehaving is an upstream on loopback that reads a request head and
// then does what its act says. open counts its connections until they end:
// closed by the proxy, which a drain notices, or by the act itself.
type misbehaving struct {
	addr string
	open atomic.Int64
}

func misbehave(t testing.TB, act func(c *net.TCPConn, br *bufio.Reader)) *misbehaving {
	m := &misbehaving{}
	m.addr = rawBackend(t, func(c *net.TCPConn) {
		m.open.Add(1)
		defer m.open.Add(-1)
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		act(c, br)
	})
	return m
}

// drain reads until the proxy closes the connection.
func drain(_ *net.TCPConn, br *bufio.Reader) { io.Copy(io.Discard, br) }

// answerThen writes s, then does then.
func answerThen(s string, then func(*net.TCPConn, *bufio.Reader)) func(*net.TCPConn, *bufio.Reader) {
	return func(c *net.TCPConn, br *bufio.Reader) {
		if _, err := io.WriteString(c, s); err != nil {
			return
		}
		then(c, br)
	}
}

// resetAfter resets the connection (SO_LINGER 0) after d, time for what
// was written to reach the proxy first.
func resetAfter(d time.Duration) func(*net.TCPConn, *bufio.Reader) {
	return func(c *net.TCPConn, _ *bufio.Reader) {
		time.Sleep(d)
		c.SetLinger(0)
	}
}

// answerAfter answers 200 "slow" after d, unless the proxy closes the
// connection first; then it keeps the connection, as a keep-alive server
// does.
func answerAfter(d time.Duration) func(*net.TCPConn, *bufio.Reader) {
	return func(c *net.TCPConn, br *bufio.Reader) {
		c.SetReadDeadline(time.Now().Add(d))
		if _, err := br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
			return // the proxy gave up and closed
		}
		c.SetReadDeadline(time.Time{})
		answerThen("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow", drain)(c, br)
	}
}

// A body longer than the proxy's write buffer, so that the client gets the
// head before the upstream breaks off.
var (
	headOf64K = "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"
	part8K    = strings.Repeat("x", 8<<10)
)

// exchanged is what a client saw of one request on a connection of its
// own: the response (nil when the connection closed before a head),
// whether its body came whole, whether the connection was closed after an
// answer that was not whole, and how long it all took.
type exchanged struct {
	resp   *http.Response
	body   string
	whole  bool
	closed bool
	took   time.Duration
}

// oneExchange sends method / to the proxy at addr and reads the answer, for
// at most 5 s.
func oneExchange(t *testing.T, addr, method string) exchanged {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := method + " / HTTP/1.1\r\nHost: app.example\r\n\r\n"
	if method == http.MethodPost {
		req = "POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\n\r\nonce"
	}
	start := time.Now()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var e exchanged
	br := bufio.NewReader(c)
	if e.resp, err = http.ReadResponse(br, nil); err == nil {
		var body []byte
		body, err = io.ReadAll(e.resp.Body)
		e.body, e.whole = string(body), err == nil
	}
	if !e.whole {
		// An answer cut short leaves the connection unusable: the proxy
		// must close it, not leave it hanging.
		_, err := br.ReadByte()
		e.closed = err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	e.took = time.Since(start)
	return e
}

// goroutines counts the goroutines, leaving out fasthttp's own
// background ones: the server date's ticker, started once for the process,
// and each server's idle-worker sweeper, which sleeps 10 s at a time and
// only then sees that its server stopped. They are not the proxy's and do
// not grow with requests; dump is the stacks of the others.
func goroutines() (n int, dump string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var kept []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "fasthttp.updateServerDate") || strings.Contains(g, "fasthttp.(*workerPool).Start.func") {
			continue
		}
		kept = append(kept, g)
	}
	return len(kept), strings.Join(kept, "\n\n")
}

// settled waits up to 3 s for the goroutines to be back to before, and
// fails t with their stacks when they are not.
func settled(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, dump := goroutines()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines 3 s after the test, %d before it:\n%s", n, before, dump)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMisbehavingUpstreams: an upstream (the canary) that never answers,
// stalls or resets in its body, answers garbage, or answers late. Every
// case ends within its timeout with a clean 502 or 504 to the client, or
// the retry's answer from stable for an idempotent request that nothing of
// the answer had reached the client yet; a body that breaks after the
// head went out can only end with the client's connection closed. The
// failure is the canary's (toward max_fails only before the head), the
// canary's connection is closed, and no goroutine is left behind.
func TestMisbehavingUpstreams(t *testing.T) {
	const short = 300 * time.Millisecond
	tests := []struct {
		name    string
		act     func(*net.TCPConn, *bufio.Reader)
		timeout time.Duration // the proxy's ReadTimeout
		method  string
		stable  bool // a healthy stable upstream beside the canary
		// status is what the client gets, body its body; 0 for an answer
		// cut short, which ends with the connection closed.
		status int
		body   string
		head   bool // the client got the head of the answer cut short
		// errors: the attempt counts for the verdict, as an answer that
		// was not whole; maxFails: also toward max_fails, which takes the
		// canary out of the rotation.
		errors, maxFails bool
		// The answer comes no sooner than least and within most.
		least, most time.Duration
		kept        int64 // the canary's connections left open: 1 for one back in the pool
	}{
		{name: "never answers", act: drain, timeout: short, method: "GET",
			status: 504, maxFails: true, errors: true, least: short, most: short + time.Second},
		{name: "never answers, GET retried on stable", act: drain, timeout: short, method: "GET", stable: true,
			status: 200, body: "stable", maxFails: true, errors: true, least: short, most: short + time.Second},
		{name: "never answers, POST not retried", act: drain, timeout: short, method: "POST", stable: true,
			status: 504, maxFails: true, errors: true, least: short, most: short + time.Second},

		// The head alone is still in the proxy's write buffer when the body
		// times out: the client gets no answer at all, only the closed
		// connection, and no retry, since the proxy had committed to it.
		{name: "head then stalls", act: answerThen(headOf64K, drain), timeout: short, method: "GET", stable: true,
			errors: true, least: short, most: short + time.Second},
		{name: "head and part of the body then stalls", act: answerThen(headOf64K+part8K, drain), timeout: short, method: "GET", stable: true,
			head: true, errors: true, least: short, most: short + time.Second},
		{name: "chunked, then stalls", act: answerThen("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n"+part8K+"\r\n", drain),
			timeout: short, method: "GET", stable: true, head: true, errors: true, least: short, most: short + time.Second},

		// The timeout is long: the reset, not the timeout, ends these.
		{name: "resets mid-body", act: answerThen(headOf64K+part8K, resetAfter(50*time.Millisecond)), timeout: 5 * time.Second,
			method: "GET", stable: true, head: true, errors: true, most: time.Second},
		{name: "closes mid-body", act: answerThen(headOf64K+part8K, func(*net.TCPConn, *bufio.Reader) {}), timeout: 5 * time.Second,
			method: "GET", stable: true, head: true, errors: true, most: time.Second},
		{name: "resets before the head, GET retried on stable", act: resetAfter(0), timeout: 5 * time.Second, method: "GET", stable: true,
			status: 200, body: "stable", maxFails: true, errors: true, most: time.Second},
		{name: "resets before the head, POST not retried", act: resetAfter(0), timeout: 5 * time.Second, method: "POST", stable: true,
			status: 502, maxFails: true, errors: true, most: time.Second},

		{name: "garbage", act: answerThen("this is not HTTP\r\n\r\n", drain), timeout: 5 * time.Second, method: "GET",
			status: 502, maxFails: true, errors: true, most: time.Second},
		{name: "garbage, GET retried on stable", act: answerThen("SSH-2.0-OpenSSH_9.6\r\n\r\n", drain), timeout: 5 * time.Second,
			method: "GET", stable: true, status: 200, body: "stable", maxFails: true, errors: true, most: time.Second},
		{name: "binary noise without a line end", act: answerThen(string(bytes.Repeat([]byte{0xff, 0x00, 0x17}, 32<<10)), drain),
			timeout: 5 * time.Second, method: "GET", status: 502, maxFails: true, errors: true, most: time.Second},
		{name: "a status line and then garbage", act: answerThen("HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n", drain),
			timeout: 5 * time.Second, method: "GET", status: 502, maxFails: true, errors: true, most: time.Second},

		{name: "answers after 2 s, header timeout 300 ms", act: answerAfter(2 * time.Second), timeout: short, method: "GET",
			status: 504, maxFails: true, errors: true, least: short, most: short + time.Second},
		{name: "answers after 2 s, timeout 3 s", act: answerAfter(2 * time.Second), timeout: 3 * time.Second, method: "GET",
			status: 200, body: "slow", least: 2 * time.Second, most: 3*time.Second + time.Second, kept: 1},
	}
	for _, tt := range tests {
		before, _ := goroutines()
		t.Run(tt.name, func(t *testing.T) {
			m := misbehave(t, tt.act)
			opts := proxy.Options{ReadTimeout: tt.timeout, UpstreamIdle: 200 * time.Millisecond}
			var r *rig
			if tt.stable {
				// The canary comes first with an equal weight: the first
				// request picks it.
				r = startProxy(t, opts, canary("canary", 1, m.addr), stable("stable", 1, testkit.StartBackend(t, "stable").Addr()))
			} else {
				r = startProxy(t, opts, canary("canary", 1, m.addr))
			}

			e := oneExchange(t, r.addr, tt.method)
			switch {
			case tt.status != 0:
				if e.resp == nil || e.resp.StatusCode != tt.status || !e.whole || tt.body != "" && e.body != tt.body {
					t.Errorf("got %v, body %q (whole %v), want %d %q", status(e.resp), e.body, e.whole, tt.status, tt.body)
				}
			case e.whole:
				t.Errorf("got %v and a whole body of %d bytes, want an answer cut short", status(e.resp), len(e.body))
			case !e.closed:
				t.Error("the answer was cut short and the client's connection stayed open")
			case tt.head && e.resp == nil:
				t.Error("the client got no head before the upstream broke off")
			}
			if e.took < tt.least || e.took > tt.most {
				t.Errorf("the answer took %v, want %v to %v", e.took.Round(time.Millisecond), tt.least, tt.most)
			}

			r.idle(t)
			if n := r.requests(t, "canary"); n != 1 {
				t.Errorf("the canary counted %d requests, want 1", n)
			}
			if n, want := r.errors(t, "canary"), b2u(tt.errors); n != want {
				t.Errorf("the canary counted %d errors, want %d", n, want)
			}
			if n, want := r.failures(t, "canary"), b2u(tt.errors); n != want {
				t.Errorf("the canary counted %d answers that were not whole, want %d", n, want)
			}
			// As in nginx, max_fails does not apply to a lone upstream.
			if in, want := r.healthy(t, "canary"), !(tt.maxFails && tt.stable); in != want {
				t.Errorf("the canary in the rotation: %v, want %v", in, want)
			}
			if tt.stable {
				if n, want := r.requests(t, "stable"), b2u(tt.body == "stable"); n != want {
					t.Errorf("stable got %d requests, want %d", n, want)
				}
				if n := r.errors(t, "stable"); n != 0 {
					t.Errorf("stable counted %d errors for the canary's failure", n)
				}
			}
			if !testkit.Within(2*time.Second, func() bool { return m.open.Load() == tt.kept }) {
				t.Errorf("the canary has %d connections open, want %d", m.open.Load(), tt.kept)
			}
		})
		settled(t, before)
	}
}

func status(resp *http.Response) string {
	if resp == nil {
		return "no answer"
	}
	return resp.Status
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// TestStalledCloseDelimitedBodyIsCutWithinTheTimeout: an upstream whose
// body ends when it closes, and that stalls instead. An HTTP/1.1 client
// gets the body chunked, so the cut shows (no last chunk); an HTTP/1.0
// client gets it ended by the close, as the upstream sent it, and cannot
// tell. Either way the connection closes within the read timeout, and the
// canary is blamed.
func TestStalledCloseDelimitedBodyIsCutWithinTheTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		before, _ := goroutines()
		t.Run(proto, func(t *testing.T) {
			m := misbehave(t, answerThen("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+part8K, drain))
			r := startProxy(t, proxy.Options{ReadTimeout: timeout, UpstreamIdle: 200 * time.Millisecond}, canary("canary", 1, m.addr))
			c := rawConn(t, r.addr)
			start := time.Now()
			io.WriteString(c, "GET / "+proto+"\r\nHost: app.example\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the head: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if cut := err != nil; cut != (proto == "HTTP/1.1") || len(body) != len(part8K) {
				t.Errorf("read %d bytes, %v; want the %d sent, and the cut to show to HTTP/1.1 only", len(body), err, len(part8K))
			}
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the client's connection is still open: %v", err)
			}
			if took := time.Since(start); took < timeout || took > timeout+time.Second {
				t.Errorf("the connection closed after %v, want the timeout of %v", took.Round(time.Millisecond), timeout)
			}
			r.idle(t)
			if n := r.errors(t, "canary"); n != 1 {
				t.Errorf("the canary counted %d errors, want 1", n)
			}
			if !testkit.Within(2*time.Second, func() bool { return m.open.Load() == 0 }) {
				t.Errorf("the canary has %d connections open, want 0", m.open.Load())
			}
		})
		settled(t, before)
	}
}
