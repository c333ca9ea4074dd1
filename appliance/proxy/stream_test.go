package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

const (
	bodySize  = 64 << 20 // what a proxy that buffers could not hide
	firstPart = 1 << 20  // what the far side must see before the rest is sent
	heapLimit = 16 << 20 // how far the heap may rise while bodySize goes through
)

// payload is n deterministic pseudo-random bytes.
func payload(seed byte, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

// held reads nothing until g opens, then r.
type held struct {
	g *gate
	r io.Reader
}

func (h held) Read(p []byte) (int, error) {
	h.g.wait()
	return h.r.Read(p)
}

// heapGrowth runs f and returns how far the heap rose above where it
// started, sampled as f runs. The heap includes garbage not yet collected,
// so a proxy that copies through small reused buffers shows a few MiB at
// most, while one that holds a body shows all of it. runtime/metrics reads
// the heap without stopping the world, unlike runtime.ReadMemStats.
func heapGrowth(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := heap()
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var top uint64
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
				top = max(top, heap())
			}
		}
	}()
	f()
	close(stop)
	if p := <-peak; p > base {
		return p - base
	}
	return 0
}

type upload struct {
	sum      [32]byte
	n        int64
	length   int64    // Content-Length as the upstream read it
	encoding []string // Transfer-Encoding as the upstream read it
	err      error
}

func TestRequestBodyIsStreamed(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		name := "content-length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			gotFirst, got := make(chan struct{}), make(chan upload, 1)
			b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := sha256.New()
				n, err := io.CopyN(h, r.Body, firstPart)
				close(gotFirst)
				if err == nil {
					var rest int64
					rest, err = io.Copy(h, r.Body)
					n += rest
				}
				got <- upload{[32]byte(h.Sum(nil)), n, r.ContentLength, r.TransferEncoding, err}
			}))
			r := startProxy(t, defaults, stable("s", 1, b.Addr()))
			c := newClient(t)
			release := newGate()
			defer release.open()

			sent := sha256.New()
			body := io.TeeReader(io.MultiReader(payload(1, firstPart), held{release, payload(2, bodySize-firstPart)}), sent)
			req, err := http.NewRequest(http.MethodPost, r.url("/upload"), body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = bodySize
			if chunked {
				req.ContentLength = -1
			}

			growth := heapGrowth(func() {
				status := make(chan int, 1)
				go func() {
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						status <- 0
						return
					}
					resp.Body.Close()
					status <- resp.StatusCode
				}()
				select {
				case <-gotFirst:
				case <-time.After(20 * time.Second):
					t.Fatal("the upstream got nothing while the client held back all but the first MiB: the proxy buffers uploads")
				}
				release.open()
				select {
				case s := <-status:
					if s != http.StatusOK {
						t.Fatalf("status %d", s)
					}
				case <-time.After(60 * time.Second):
					t.Fatal("the upload did not finish")
				}
			})

			up := <-got
			if up.err != nil || up.n != bodySize {
				t.Fatalf("the upstream read %d bytes, %v; want %d", up.n, up.err, bodySize)
			}
			if up.sum != [32]byte(sent.Sum(nil)) {
				t.Error("the upstream got other bytes than the client sent")
			}
			if chunked && (len(up.encoding) != 1 || up.encoding[0] != "chunked") {
				t.Errorf("the upstream read Transfer-Encoding %q, want chunked", up.encoding)
			}
			if !chunked && up.length != bodySize {
				t.Errorf("the upstream read Content-Length %d, want %d", up.length, bodySize)
			}
			t.Logf("the heap grew by %.1f MiB while %d MiB went through", float64(growth)/(1<<20), bodySize>>20)
			if growth > heapLimit {
				t.Errorf("the heap grew by %d MiB while %d MiB went through", growth>>20, bodySize>>20)
			}
		})
	}
}

func TestResponseBodyIsStreamed(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		name := "content-length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			release := newGate()
			defer release.open()
			sums := make(chan [32]byte, 1)
			b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", "67108864")
				}
				h := sha256.New()
				defer func() { sums <- [32]byte(h.Sum(nil)) }()
				if _, err := io.Copy(io.MultiWriter(w, h), payload(3, firstPart)); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				release.wait()
				io.Copy(io.MultiWriter(w, h), payload(4, bodySize-firstPart))
			}))
			r := startProxy(t, defaults, stable("s", 1, b.Addr()))
			c := newClient(t)

			var got [32]byte
			growth := heapGrowth(func() {
				resp, err := c.Get(r.url("/download"))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if chunked && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
					t.Errorf("Transfer-Encoding %q, want chunked", resp.TransferEncoding)
				}
				if !chunked && resp.ContentLength != bodySize {
					t.Errorf("Content-Length %d, want %d", resp.ContentLength, bodySize)
				}
				h := sha256.New()
				first := make(chan error, 1)
				go func() {
					_, err := io.CopyN(h, resp.Body, firstPart)
					first <- err
				}()
				select {
				case err := <-first:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("the client got nothing while the upstream held back all but the first MiB: the proxy buffers responses")
				}
				release.open()
				n, err := io.Copy(h, resp.Body)
				if err != nil || n != bodySize-firstPart {
					t.Fatalf("read %d bytes after the first MiB, %v; want %d", n, err, bodySize-firstPart)
				}
				got = [32]byte(h.Sum(nil))
			})
			if got != <-sums {
				t.Error("the client got other bytes than the upstream sent")
			}
			t.Logf("the heap grew by %.1f MiB while %d MiB went through", float64(growth)/(1<<20), bodySize>>20)
			if growth > heapLimit {
				t.Errorf("the heap grew by %d MiB while %d MiB went through", growth>>20, bodySize>>20)
			}
		})
	}
}

// An upstream may end its body by closing the connection (no length, not
// chunked). The client still gets all of it, chunked, and keeps its own
// connection.
func TestBodyUntilCloseIsRelayed(t *testing.T) {
	const body = "all of this, and then the upstream closes"
	addr := rawBackend(t, func(c *net.TCPConn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+body)
	})
	r := startProxy(t, defaults, stable("s", 1, addr))
	c := rawConn(t, r.addr)
	br := bufio.NewReader(c)
	for i := range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on one client connection: %v", i+1, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != body {
			t.Fatalf("request %d: body %q, %v", i+1, got, err)
		}
		if resp.Close {
			t.Fatalf("request %d: the proxy closes the client connection", i+1)
		}
	}
}

// An HTTP/1.0 client cannot read chunked encoding: a chunked upstream body
// reaches it whole, ended by the close of its connection.
func TestHTTP10ClientGetsChunkedBodyWhole(t *testing.T) {
	b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "first piece, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second piece")
	}))
	r := startProxy(t, defaults, stable("s", 1, b.Addr()))
	c := rawConn(t, r.addr)
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no response head in %q", raw)
	}
	if bytes.Contains(bytes.ToLower(head), []byte("chunked")) {
		t.Errorf("an HTTP/1.0 client got a chunked response:\n%s", head)
	}
	if string(body) != "first piece, second piece" {
		t.Errorf("body %q", body)
	}
}

// TestResponseTrailersAreRelayed: the fields an upstream sends after a
// chunked body reach the client after its last chunk, values and all.
func TestResponseTrailersAreRelayed(t *testing.T) {
	be := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "streamed")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "sha256:abc")
	}))
	r := startProxy(t, defaults, stable("s", 1, be.Addr()))
	resp, err := newClient(t).Get(r.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "streamed" {
		t.Fatalf("body %q, %v", body, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "sha256:abc" {
		t.Errorf("trailer X-Checksum %q, want sha256:abc (trailers %v)", got, resp.Trailer)
	}
}
