package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireBackend is an upstream that keeps the raw bytes it received, and
// the requests it read out of them (with net/http's parser, a strict one),
// so that a test can say what crossed the proxy and with which framing.
//
// It answers by path: /204 and /304 with those statuses, /big with a 10 MB
// chunked body, /trailers with a chunked body and a trailer, a request
// with Upgrade: websocket with 101 and then an echo; everything else with
// 200 "ok" (HEAD with the length and no body).
type wireBackend struct {
	addr string
	mu   sync.Mutex
	raw  bytes.Buffer
	reqs []wireRequest
}

// wireRequest is one request the backend read.
type wireRequest struct {
	Method, URI string
	Header      http.Header
	Chunked     bool // it came with Transfer-Encoding: chunked
	Length      int64
	Body        int64 // body bytes read
	Trailer     http.Header
}

func startWireBackend(t testing.TB) *wireBackend {
	t.Helper()
	b := &wireBackend{}
	b.addr = rawBackend(t, b.serve)
	return b
}

// reset forgets what the backend has seen so far.
func (b *wireBackend) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.raw.Reset()
	b.reqs = nil
}

// seen returns copies of the raw bytes and the requests received so far.
func (b *wireBackend) seen() ([]byte, []wireRequest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.raw.Bytes()), append([]wireRequest(nil), b.reqs...)
}

type lockedTee struct{ b *wireBackend }

func (w lockedTee) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.raw.Write(p)
}

func (b *wireBackend) serve(c *net.TCPConn) {
	br := bufio.NewReader(io.TeeReader(c, lockedTee{b}))
	bw := bufio.NewWriter(c)
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		n, err := io.Copy(io.Discard, req.Body)
		w := wireRequest{Method: req.Method, URI: req.RequestURI, Header: req.Header,
			Chunked: len(req.TransferEncoding) > 0, Length: req.ContentLength, Body: n, Trailer: req.Trailer}
		b.mu.Lock()
		b.reqs = append(b.reqs, w)
		b.mu.Unlock()
		if err != nil {
			return
		}
		if !b.answer(req, br, bw) {
			return
		}
		if bw.Flush() != nil {
			return
		}
	}
}

// answer writes the response to req; false when the connection is done.
func (b *wireBackend) answer(req *http.Request, br *bufio.Reader, bw *bufio.Writer) bool {
	switch {
	case strings.EqualFold(req.Header.Get("Upgrade"), "websocket"):
		fmt.Fprint(bw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		bw.Flush()
		io.Copy(bw, br) // echo until the client goes
		bw.Flush()
		return false
	case req.URL.Path == "/204":
		fmt.Fprint(bw, "HTTP/1.1 204 No Content\r\n\r\n")
	case req.URL.Path == "/304":
		fmt.Fprint(bw, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
	case req.URL.Path == "/big":
		fmt.Fprint(bw, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := bytes.Repeat([]byte("b"), 64<<10)
		for range 160 { // 10 MiB
			fmt.Fprintf(bw, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		fmt.Fprint(bw, "0\r\n\r\n")
	case req.URL.Path == "/trailers":
		fmt.Fprint(bw, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 42\r\n\r\n")
	case req.Method == http.MethodHead:
		fmt.Fprint(bw, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
	default:
		fmt.Fprint(bw, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
	return true
}
