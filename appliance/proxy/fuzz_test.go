package proxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"testing"
	"time"
)

// FuzzRequest writes arbitrary bytes as a client into a live proxy on
// loopback, in front of a backend that checks every request head it gets.
// The invariants:
//   - the proxy answers, or closes the connection, within 3 s of the
//     client's last byte, and never panics;
//   - a client request with both Content-Length and Transfer-Encoding,
//     with a Transfer-Encoding other than chunked, with an obs-fold line or
//     a bare LF is not forwarded at all (checked for the first request of
//     the input: fasthttp rewrites the head, so the backend would see a
//     clean one), and no such request reaches the backend either;
//   - the backend never reads more requests than the client gets answers
//     from it: a request the proxy saw as one is one (no smuggling).
//
// make test runs it for a few seconds; the seeds are the smuggling cases,
// and what it finds stays in testdata/fuzz/FuzzRequest.
func FuzzRequest(f *testing.F) {
	for _, m := range malformed {
		f.Add([]byte(m.raw))
	}
	for _, c := range conformance {
		if raw := c.raw(); len(raw) < 64<<10 {
			f.Add(raw)
		}
	}
	b := startFuzzBackend(f)
	opts := defaults
	opts.IdleTimeout = time.Second
	r := startProxy(f, opts, stable("a", 1, b.addr))

	f.Fuzz(func(t *testing.T, raw []byte) {
		b.reset()
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		go func() {
			c.Write(raw)
			c.(*net.TCPConn).CloseWrite()
		}()
		answered, err := readAnswers(bufio.NewReader(c))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		got, bad := b.result()
		if bad != "" {
			t.Fatalf("%q reached the backend as %s", raw, bad)
		}
		// Empty lines before a request line are ignored (RFC 9112 section
		// 2.2): the request that follows is what counts.
		lead := bytes.TrimLeft(raw, "\r\n")
		if head, err := readRawHead(bufio.NewReader(bytes.NewReader(lead))); err == nil {
			if _, _, why := framing(head); why != "" && got > 0 {
				t.Fatalf("%q, with %s, was forwarded", raw, why)
			}
		}
		if got > answered {
			t.Fatalf("%q: the backend read %d requests, the client got %d answers from it", raw, got, answered)
		}
	})
}

// readAnswers reads the proxy's responses until it closes the connection,
// and counts those that came from the backend.
func readAnswers(br *bufio.Reader) (int, error) {
	n := 0
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return n, errors.New("no answer and no close within 3 s")
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
				return n, nil
			case errors.As(err, new(*net.OpError)):
				return n, nil // reset by the proxy: closed
			}
			return n, fmt.Errorf("the proxy's response does not parse: %w", err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return n, errors.New("a response body did not end within 3 s")
			}
		}
		resp.Body.Close()
		if resp.Header.Get("X-Backend") != "" {
			n++
		}
	}
}

// fuzzBackend reads request heads by hand, as bytes, so that it sees what
// the proxy sent rather than what a lenient parser makes of it; it checks
// each, reads its body by its framing and answers with an empty 200 marked
// X-Backend.
type fuzzBackend struct {
	addr string
	mu   sync.Mutex
	n    int    // whole requests read since reset
	bad  string // the first violation since reset
}

func startFuzzBackend(t testing.TB) *fuzzBackend {
	b := &fuzzBackend{}
	b.addr = rawBackend(t, b.serve)
	return b
}

func (b *fuzzBackend) reset() {
	b.mu.Lock()
	b.n, b.bad = 0, ""
	b.mu.Unlock()
}

func (b *fuzzBackend) result() (int, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.bad
}

func (b *fuzzBackend) violation(why string, head []byte) {
	b.mu.Lock()
	if b.bad == "" {
		b.bad = fmt.Sprintf("%s: %q", why, head)
	}
	b.mu.Unlock()
}

func (b *fuzzBackend) serve(c *net.TCPConn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		head, err := readRawHead(br)
		if err != nil {
			return
		}
		cl, chunked, why := framing(head)
		if why != "" {
			b.violation(why, head)
			return
		}
		switch {
		case chunked:
			if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
				return
			}
			if _, err := readRawHead(br); err != nil { // the trailer section
				return
			}
		case cl > 0:
			if _, err := io.CopyN(io.Discard, br, cl); err != nil {
				return
			}
		}
		b.mu.Lock()
		b.n++
		b.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Backend: 1\r\n\r\n"); err != nil {
			return
		}
	}
}

// readRawHead reads lines up to and including an empty one.
func readRawHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		head = append(head, line...)
		if string(line) == "\r\n" || string(line) == "\n" {
			return head, nil
		}
		if len(head) > 64<<10 {
			return nil, errors.New("head too long")
		}
	}
}

// framing reads a request head's body framing, or says what makes it
// ambiguous.
func framing(head []byte) (cl int64, chunked bool, why string) {
	cl = -1
	te := false
	lines := bytes.SplitAfter(head, []byte("\n"))
	for i, l := range lines {
		if len(l) == 0 {
			continue
		}
		if !bytes.HasSuffix(l, []byte("\r\n")) {
			return 0, false, "a line ending in a bare LF"
		}
		if i > 0 && (l[0] == ' ' || l[0] == '\t') {
			return 0, false, "an obs-fold line"
		}
		if i == 0 {
			continue
		}
		k, v, ok := bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(":"))
		if !ok {
			if len(k) > 0 {
				return 0, false, "a header line without a colon"
			}
			continue
		}
		v = bytes.Trim(v, " \t")
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if cl >= 0 {
				return 0, false, "two Content-Length lines"
			}
			n, err := strconv.ParseUint(string(v), 10, 63)
			if err != nil {
				return 0, false, "a bad Content-Length"
			}
			cl = int64(n)
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			if te || !bytes.EqualFold(v, []byte("chunked")) {
				return 0, false, "a Transfer-Encoding other than one chunked"
			}
			te = true
		}
	}
	if te && cl >= 0 {
		return 0, false, "both Content-Length and Transfer-Encoding"
	}
	return cl, te, ""
}
