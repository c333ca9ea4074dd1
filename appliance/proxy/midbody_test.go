package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/proxy"
)

// breaking is an upstream that answers every request with the head of a
// response (chunked or of a length), a part of its body, and then does
// what end does to the connection.
func breaking(t testing.TB, chunked bool, end func(c *net.TCPConn)) string {
	return rawBackend(t, func(c *net.TCPConn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		// More than the proxy's write buffer holds, so that the client gets
		// the head before the upstream breaks off.
		part := strings.Repeat("x", 8<<10)
		head := "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n" + part
		if chunked {
			head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n" + part + "\r\n"
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		end(c)
	})
}

func reset(c *net.TCPConn) {
	time.Sleep(50 * time.Millisecond) // the head goes on first
	c.SetLinger(0)
}

// stall keeps the connection silent until the proxy gives up on it.
func stall(c *net.TCPConn) { io.Copy(io.Discard, c) }

func TestUpstreamFailingMidBodyIsTheCanarysError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		chunked bool
		end     func(*net.TCPConn)
	}{
		{"reset", false, reset},
		{"reset chunked", true, reset},
		{"stall", false, stall},
		{"stall chunked", true, stall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startProxy(t, proxy.Options{ReadTimeout: 300 * time.Millisecond},
				canary("canary", 1, breaking(t, tc.chunked, tc.end)))
			c := rawConn(t, r.addr)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the response head: %v", err)
			}
			if _, err := io.ReadAll(resp.Body); err == nil {
				t.Error("the client read a whole body")
			}
			// The connection cannot carry another response: it is closed.
			if _, err := br.ReadByte(); err == nil {
				t.Error("the client's connection stayed open")
			}
			r.idle(t)
			if n := r.requests(t, "canary"); n != 1 {
				t.Errorf("the canary counted %d requests, want 1", n)
			}
			if n := r.errors(t, "canary"); n != 1 {
				t.Errorf("the canary counted %d errors, want 1", n)
			}
			w := r.upstream(t, "canary").Stats.Window.Load().Snapshot(time.Now())
			if w.Requests != 1 || w.Errors != 1 {
				t.Errorf("the canary's window counted %d requests and %d errors, want 1 and 1", w.Requests, w.Errors)
			}
			if n := r.answers(t, "canary", 2); n != 0 {
				t.Errorf("the broken answer counted as %d 2xx", n)
			}
			// As in nginx, a failure after the headers went out does not
			// count toward max_fails.
			if !r.healthy(t, "canary") {
				t.Error("the canary is out of the rotation")
			}
		})
	}
}

func TestClientLeavingMidBodyIsNobodysFailure(t *testing.T) {
	left := newGate()
	defer left.open()
	be := breaking(t, false, func(c *net.TCPConn) {
		left.wait()
		// Enough to fill every buffer between the proxy and the client
		// that left, so that the proxy's writes fail.
		for range 64 {
			if _, err := c.Write(make([]byte, 64<<10)); err != nil {
				return
			}
		}
	})
	// The body is longer than the head says: the upstream does not care.
	r := startProxy(t, defaults, canary("canary", 1, be))
	c := rawConn(t, r.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatalf("reading the response head: %v", err)
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	left.open()
	r.idle(t)
	if n := r.errors(t, "canary"); n != 0 {
		t.Errorf("the canary counted %d errors, want 0", n)
	}
	if w := r.upstream(t, "canary").Stats.Window.Load().Snapshot(time.Now()); w.Errors != 0 {
		t.Errorf("the canary's window counted %d errors, want 0", w.Errors)
	}
}
