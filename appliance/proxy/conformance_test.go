package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The conformance suite: each case is a request as raw bytes on a fresh
// connection, and what must happen: the responses, whether the connection
// stays open, and what the upstream received, with which framing. Every
// case runs against canaryd and, where nginx is installed, against nginx
// in front of the same kind of backend; where the two differ, the case
// says why that is the right answer for canaryd (decision), and a
// difference without a decision fails the test. The table of differences
// is in the log (go test -v -run TestConformance).

type confCase struct {
	name string
	raw  func() []byte
	// responses: how many responses the client waits for before it looks
	// whether the connection stays open; heads: which of them answer a
	// HEAD.
	responses int
	heads     []int
	tunnel    bool   // after a 101, the client sends bytes and wants them back
	want      string // canaryd's summary (see summarize)
	decision  string // why canaryd differs from nginx; "" when it must not
}

func text(s string) func() []byte { return func() []byte { return []byte(s) } }

const tenMB = 10 << 20

var conformance = []confCase{
	{name: "GET, keep-alive", raw: text("GET /a HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 1,
		want: "200(2) open | GET /a -"},
	{name: "content-length body", raw: text("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"), responses: 1,
		want: "200(2) open | POST /p cl=5 body=5"},
	{name: "chunked body", raw: text("POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), responses: 1,
		want:     "200(2) open | POST /p chunked body=5",
		decision: "nginx buffers a chunked body and sends it on with a length; canaryd streams it on chunked"},
	{name: "chunked response", raw: text("GET /big HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 1,
		want: "200(10485760) open | GET /big -"},
	{name: "10 MB content-length body", raw: func() []byte {
		return append([]byte(fmt.Sprintf("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", tenMB)), make([]byte, tenMB)...)
	}, responses: 1, want: "200(2) open | POST /p cl=10485760 body=10485760"},
	{name: "10 MB chunked body", raw: func() []byte {
		b := []byte("POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 160 {
			b = append(append(append(b, "10000\r\n"...), make([]byte, 64<<10)...), "\r\n"...)
		}
		return append(b, "0\r\n\r\n"...)
	}, responses: 1, want: "200(2) open | POST /p chunked body=10485760",
		decision: "as for the chunked body: nginx buffers it (to disk) and sends a length"},
	{name: "Expect: 100-continue", raw: text("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"), responses: 1,
		want: "100 200(2) open | POST /p cl=5 body=5"},
	{name: "HEAD, then GET", raw: text("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 2, heads: []int{0},
		want: "200(0) 200(2) open | HEAD /h - ; GET /g -"},
	{name: "204, then GET", raw: text("GET /204 HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 2,
		want: "204(0) 200(2) open | GET /204 - ; GET /g -"},
	{name: "304, then GET", raw: text("GET /304 HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 2,
		want: "304(0) 200(2) open | GET /304 - ; GET /g -"},
	{name: "pipelining 3", raw: text("GET /1 HTTP/1.1\r\nHost: t\r\n\r\nPOST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 3,
		want: "200(2) 200(2) 200(2) open | GET /1 - ; POST /2 cl=2 body=2 ; GET /3 -"},
	{name: "Connection: close", raw: text("GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), responses: 1,
		want: "200(2) closed | GET /c -"},
	{name: "HTTP/1.0", raw: text("GET /0 HTTP/1.0\r\n\r\n"), responses: 1,
		want: "200(2) closed | GET /0 -"},
	{name: "hop-by-hop headers", raw: text("GET /hop HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-End: 1\r\n\r\n"), responses: 1,
		want:     "200(2) open | GET /hop -",
		decision: "nginx passes Proxy-Connection and the headers the client's Connection names (X-Hop) on; canaryd drops them (RFC 9110 7.6.1)"},
	{name: "request trailers", raw: text("POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 1\r\n\r\n"), responses: 1,
		want:     "200(2) open | POST /p chunked body=2 trailer=X-Sum",
		decision: "nginx drops request trailers (it buffers and sends a length); canaryd streams them on"},
	{name: "response trailers", raw: text("GET /trailers HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 1,
		want: "200(2) trailer=X-Sum open | GET /trailers -"},
	{name: "absolute-form target", raw: text("GET http://t/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"), responses: 1,
		want: "200(2) open | GET /abs?q=1 -"},
	{name: "WebSocket upgrade", raw: text("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
		responses: 1, tunnel: true, want: "101 echo open | GET /ws -"},

	// The smuggling set: each gets a 4xx and a closed connection, and the
	// upstream sees nothing.
	{name: "CL and TE", raw: text("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"), responses: 1,
		want: "400 closed | -"},
	{name: "TE with obs-fold", raw: text("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), responses: 1,
		want: "400 closed | -"},
	{name: "obs-fold", raw: text("GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n 2\r\n\r\n"), responses: 1,
		want: "400 closed | -"},
	{name: "TE chunked, identity", raw: text("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"), responses: 1,
		want: "400 closed | -", decision: "nginx answers 501 Not Implemented; canaryd 400, as fasthttp does for every other coding"},
	{name: "TE identity", raw: text("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n"), responses: 1,
		want: "400 closed | -", decision: "nginx answers 501; canaryd 400"},
	{name: "TE twice", raw: text("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), responses: 1,
		want: "400 closed | -"},
	{name: "space before colon", raw: text("POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello"), responses: 1,
		want: "400 closed | -"},
	{name: "CL with a plus sign", raw: text("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello"), responses: 1,
		want: "400 closed | -"},
	{name: "CL with leading zeros", raw: text("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 005\r\n\r\nhello"), responses: 1,
		want: "200(2) open | POST /p cl=5 body=5"},
	{name: "CL twice, same", raw: text("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), responses: 1,
		want: "400 closed | -"}, // RFC 9110 8.6 would allow taking identical lengths; neither does
	{name: "CL twice, differing", raw: text("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 5\r\n\r\nhello"), responses: 1,
		want: "400 closed | -"},
	{name: "bad chunk size", raw: text("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), responses: 1,
		want: "400 closed | -"},
	{name: "bare CR in a header", raw: text("GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r2\r\n\r\n"), responses: 1,
		want: "400 closed | -"},
	{name: "NUL in a header", raw: text("GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\x002\r\n\r\n"), responses: 1,
		want: "400 closed | -"},
	{name: "two spaces in the request line", raw: text("GET  / HTTP/1.1\r\nHost: t\r\n\r\n"), responses: 1,
		want:     "400 closed | -",
		decision: "nginx splits the request line on any run of spaces (RFC 9112 3 allows it); canaryd (fasthttp) refuses it: the grammar is one SP"},
	{name: "bare LF line endings", raw: text("GET /lf HTTP/1.1\nHost: t\n\n"), responses: 1,
		want:     "400 closed | -",
		decision: "nginx serves a bare-LF head (RFC 9112 2.2 allows it); canaryd refuses it, the stricter reading, since no client that matters sends one"},
	{name: "bare LF pipelined behind a GET", raw: text("GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /lf HTTP/1.1\nHost: t\n\n"), responses: 2,
		want: "200(2) 400 closed | GET /1 -", decision: "as for bare LF line endings"},
	{name: "too-long header", raw: text("GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + strings.Repeat("a", 20<<10) + "\r\n\r\n"), responses: 1,
		want:     "431 closed | -",
		decision: "nginx answers 400 (Request Header Or Cookie Too Large); canaryd the status made for it, 431"},
}

// exchangeResult is what one client connection saw.
type exchangeResult struct {
	responses []string // status(body length); 100, 101 and errors without a length
	closed    bool
	hung      bool
	echo      bool
	trailers  []string // of the responses
}

// converse writes c.raw on a new connection to addr, reads c.responses
// responses and then looks, briefly, whether more come and whether the
// connection closes. Every connection ends after 2 s: a hang is a failure.
func converse(t testing.TB, addr string, c confCase) exchangeResult {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	conn.SetDeadline(deadline)
	raw := c.raw()
	go conn.Write(raw)
	br := bufio.NewReader(conn)
	var ex exchangeResult
	for got := 0; ; {
		if got >= c.responses {
			// Enough: more within a moment would be an answer too many.
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
		var req *http.Request
		if slices.Contains(c.heads, got) {
			req = &http.Request{Method: http.MethodHead}
		}
		resp, err := http.ReadResponse(br, req)
		if err == nil {
			switch resp.StatusCode {
			case http.StatusContinue:
				ex.responses = append(ex.responses, "100")
				continue
			case http.StatusSwitchingProtocols:
				ex.responses = append(ex.responses, "101")
				got++
				if c.tunnel {
					io.WriteString(conn, "hello")
					buf := make([]byte, 5)
					_, err := io.ReadFull(br, buf)
					ex.echo = err == nil && string(buf) == "hello"
				}
				continue
			}
			n, err2 := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			for k := range resp.Trailer {
				ex.trailers = append(ex.trailers, k)
			}
			if resp.StatusCode >= 400 {
				// An error page's text is each proxy's own.
				ex.responses = append(ex.responses, fmt.Sprint(resp.StatusCode))
			} else {
				ex.responses = append(ex.responses, fmt.Sprintf("%d(%d)", resp.StatusCode, n))
			}
			got++
			err = err2
		}
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			ex.closed = !timeout
			ex.hung = timeout && got < c.responses
			return ex
		}
	}
}

// hopNames are headers that must not reach an upstream in the
// hop-by-hop case.
var hopNames = []string{"Keep-Alive", "Proxy-Connection", "Te", "X-Hop", "Trailer"}

// summarize is one line of what happened: the responses, the connection,
// and each request the upstream got (method, target, framing, body bytes,
// trailers, leaked hop-by-hop headers), or "-" for none.
func summarize(ex exchangeResult, reqs []wireRequest) string {
	var b strings.Builder
	if ex.hung {
		b.WriteString("HUNG ")
	}
	for _, r := range ex.responses {
		b.WriteString(r)
		if r == "101" && ex.echo {
			b.WriteString(" echo")
		}
		b.WriteString(" ")
	}
	for _, k := range ex.trailers {
		b.WriteString("trailer=" + k + " ")
	}
	if ex.closed {
		b.WriteString("closed | ")
	} else {
		b.WriteString("open | ")
	}
	if len(reqs) == 0 {
		b.WriteString("-")
	}
	for i, r := range reqs {
		if i > 0 {
			b.WriteString(" ; ")
		}
		fmt.Fprintf(&b, "%s %s", r.Method, r.URI)
		switch {
		case r.Chunked:
			b.WriteString(" chunked")
		case r.Length > 0:
			fmt.Fprintf(&b, " cl=%d", r.Length)
		default:
			b.WriteString(" -")
		}
		if r.Body > 0 {
			fmt.Fprintf(&b, " body=%d", r.Body)
		}
		for k := range r.Trailer {
			b.WriteString(" trailer=" + k)
		}
		for _, h := range hopNames {
			if r.Header.Get(h) != "" {
				b.WriteString(" leaked=" + h)
			}
		}
		if c := r.Header.Get("Connection"); c != "" && !strings.EqualFold(c, "upgrade") {
			b.WriteString(" leaked=Connection")
		}
	}
	return b.String()
}

func TestConformance(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	var nb *wireBackend
	var ngx string
	if bin := nginxBinary(); bin != "" {
		nb = startWireBackend(t)
		ngx = startNginx(t, bin, nb.addr)
	} else {
		t.Log("nginx is not installed: canaryd alone")
	}

	type row struct{ name, canaryd, nginx, decision string }
	var diffs []row
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) {
			b.reset()
			ex := converse(t, r.addr, c)
			_, reqs := b.seen()
			got := summarize(ex, reqs)
			if got != c.want {
				t.Errorf("canaryd: %s\n                want: %s", got, c.want)
			}
			if nb == nil {
				return
			}
			nb.reset()
			nex := converse(t, ngx, c)
			time.Sleep(20 * time.Millisecond) // nginx may still be writing to its upstream
			_, nreqs := nb.seen()
			ngot := summarize(nex, nreqs)
			switch {
			case ngot != got && c.decision == "":
				t.Errorf("canaryd and nginx differ without a decision:\n canaryd: %s\n   nginx: %s", got, ngot)
			case ngot == got && c.decision != "":
				t.Logf("canaryd and nginx agree now; the decision %q is stale", c.decision)
			}
			if ngot != got {
				diffs = append(diffs, row{c.name, got, ngot, c.decision})
			}
		})
	}
	if nb == nil {
		return
	}
	var tab strings.Builder
	fmt.Fprintf(&tab, "%d of %d cases differ from nginx:\n", len(diffs), len(conformance))
	for _, d := range diffs {
		fmt.Fprintf(&tab, "\n%s\n  canaryd: %s\n  nginx:   %s\n  decision: %s\n", d.name, d.canaryd, d.nginx, d.decision)
	}
	t.Log(tab.String())
}

// nginxBinary is nginx's path, or "" when it is not installed (Debian
// keeps it in /usr/sbin, which a user's PATH may lack).
func nginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// startNginx runs nginx as a reverse proxy to upstream, configured as a
// user would (WebSocket upgrades passed, bodies of any size), in a prefix
// of its own until the test ends, and returns its address.
func startNginx(t testing.TB, bin, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	user := ""
	if os.Getuid() == 0 {
		user = "user root root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
error_log %[2]s/error.log warn;
pid %[2]s/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[2]s/body; proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fcgi; uwsgi_temp_path %[2]s/uwsgi; scgi_temp_path %[2]s/scgi;
  client_max_body_size 0;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream app { server %[3]s; keepalive 8; }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`, user, dir, upstream, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM, not SIGKILL: the master stops its worker, which a
		// killed master would leave running.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for start := time.Now(); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("nginx did not start on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
