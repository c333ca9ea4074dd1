package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exchange is what a client saw after writing a request as raw bytes on a
// fresh connection: the statuses of the responses it read, in order, and
// whether the connection then closed (true) or stayed open until the
// deadline. hung is set when not even one response came in time.
type exchange struct {
	statuses []int
	closed   bool
	hung     bool
}

// rawExchange writes raw on a new connection to addr and reads responses
// until the connection closes or within ends; heads says which responses
// answer a HEAD (no body to read), by position.
func rawExchange(t testing.TB, addr string, raw []byte, within time.Duration, heads ...int) exchange {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	go c.Write(raw) // a proxy may answer before it read everything
	var ex exchange
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		var req *http.Request
		for _, h := range heads {
			if h == i {
				req = &http.Request{Method: http.MethodHead}
			}
		}
		resp, err := http.ReadResponse(br, req)
		if err == nil {
			if resp.StatusCode == http.StatusContinue {
				i--
				continue
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ex.statuses = append(ex.statuses, resp.StatusCode)
		}
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			ex.closed = !timeout
			ex.hung = timeout && len(ex.statuses) == 0
			return ex
		}
	}
}

// malformed are requests whose framing a proxy must refuse: each gets a
// 4xx and a closed connection within a second, and none reaches the
// upstream.
var malformed = []struct {
	name, raw string
}{
	{"bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n"},
	{"bare LF after the headers", "GET / HTTP/1.1\r\nHost: a\r\n\n"},
	{"bare LF after an empty line", "\r\nGET / HTTP/1.1\nHost: a\n\n"},
	{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n"},
	{"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n"},
	{"TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"},
	{"duplicate differing CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
	{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"},
	{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"},
	{"TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
	{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
	{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
	{"negative chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"},
}

func TestMalformedRequestsAreRefused(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			b.reset()
			ex := rawExchange(t, r.addr, []byte(tc.raw), time.Second)
			if ex.hung {
				t.Fatal("no answer within a second")
			}
			if len(ex.statuses) != 1 || ex.statuses[0] < 400 || ex.statuses[0] > 501 {
				t.Errorf("statuses %v, want one 4xx", ex.statuses)
			}
			if !ex.closed {
				t.Error("the connection stayed open")
			}
			if raw, _ := b.seen(); len(raw) > 0 {
				t.Errorf("the upstream got %q", raw)
			}
		})
	}
}

// TestBareLFWithinKeepAlive: a bare-LF head after a good request on the
// same connection is refused as well, not waited on.
func TestBareLFWithinKeepAlive(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	c := rawConn(t, r.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "GET /second HTTP/1.1\nHost: a\n\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the second request: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if _, reqs := b.seen(); len(reqs) != 1 {
		t.Errorf("the upstream got %d requests, want 1", len(reqs))
	}
}

// TestWellFramedRequestsPass: the checks refuse nothing that is well
// formed, whatever the case of the names.
func TestWellFramedRequestsPass(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\ncontent-length: 2\r\n\r\nhi",
		"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Spaces: a  b\t c\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		ex := rawExchange(t, r.addr, []byte(raw), 2*time.Second)
		if len(ex.statuses) == 0 || ex.statuses[0] != http.StatusOK {
			t.Errorf("%q: statuses %v, want 200", raw, ex.statuses)
		}
	}
}

// TestPipelinedBodiesAreNotReadAsHeads: the head scan never mistakes a
// body for a head, whatever fasthttp has read ahead: a bare LF in the body
// of a pipelined request is data.
func TestPipelinedBodiesAreNotReadAsHeads(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	body := strings.Repeat("line\n", 40<<10) // 200 KiB: streamed, past fasthttp's buffer
	for _, raw := range []string{
		"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" +
			"POST /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
			"POST /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
		"POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" +
			"POST /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
	} {
		ex := rawExchange(t, r.addr, []byte(raw), 5*time.Second)
		if len(ex.statuses) != 2 || ex.statuses[0] != 200 || ex.statuses[1] != 200 {
			t.Errorf("%.40q...: statuses %v, want 200 200", raw, ex.statuses)
		}
	}
}

// TestBareLFPipelinedBehindAGet: a bare-LF head pipelined behind a GET
// (read in the same segment) is refused at once too, and the GET served.
func TestBareLFPipelinedBehindAGet(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	ex := rawExchange(t, r.addr, []byte("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\nHost: a\n\n"), time.Second)
	if len(ex.statuses) != 2 || ex.statuses[0] != 200 || ex.statuses[1] != 400 || !ex.closed {
		t.Errorf("statuses %v closed %v, want 200 400, closed", ex.statuses, ex.closed)
	}
	if _, reqs := b.seen(); len(reqs) != 1 {
		t.Errorf("the upstream got %d requests, want 1", len(reqs))
	}
}

// TestBrokenStreamedBodyClosesTheConnection: a chunked body that turns
// malformed after fasthttp began streaming it gets a 400 and a close; what
// follows it on the connection is never read as a request.
func TestBrokenStreamedBodyClosesTheConnection(t *testing.T) {
	b := startWireBackend(t)
	r := startProxy(t, defaults, stable("a", 1, b.addr))
	chunk := strings.Repeat("x", 100<<10)
	raw := fmt.Sprintf("POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", len(chunk), chunk)
	ex := rawExchange(t, r.addr, []byte(raw), 2*time.Second)
	if len(ex.statuses) != 1 || ex.statuses[0] != 400 || !ex.closed {
		t.Errorf("statuses %v closed %v, want one 400, closed", ex.statuses, ex.closed)
	}
	_, reqs := b.seen()
	for _, q := range reqs {
		if q.URI == "/smuggled" {
			t.Error("the bytes after the broken body reached the upstream as a request")
		}
	}
}
