package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// halfOpen opens n connections to addr that send half a request head and
// wait, as a slowloris attack does; they are closed when the test ends.
func halfOpen(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(cs), err)
		}
		cs = append(cs, c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

func TestHalfOpenConnectionsCannotKeepAClientOut(t *testing.T) {
	b := testkit.StartBackend(t, "v1")
	opts := defaults
	opts.MaxConns = 32
	r := startProxy(t, opts, stable("v1", 1, b.Addr()))
	halfOpen(t, r.addr, 300)

	start := time.Now()
	if code, body := get(t, newClient(t), r.url("/")); code != http.StatusOK || body != "v1" {
		t.Fatalf("a well-behaved client got %d %q", code, body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the answer took %v behind 300 half-open connections", d)
	}
	testkit.Eventually(t, 5*time.Second, "connections held at the limit", func() bool {
		return r.proxy.Conns().Open <= 32
	})
	if s := r.proxy.Conns(); s.Evicted < 300-32 || s.Refused != 0 {
		t.Errorf("evicted %d, refused %d; want at least %d evicted, none refused", s.Evicted, s.Refused, 300-32)
	}
}

func TestTheConnectionWaitingLongestGoesFirst(t *testing.T) {
	b := testkit.StartBackend(t, "v1")
	opts := defaults
	opts.MaxConns = 16
	r := startProxy(t, opts, stable("v1", 1, b.Addr()))
	old := halfOpen(t, r.addr, 1)[0]
	time.Sleep(20 * time.Millisecond)
	halfOpen(t, r.addr, 15)
	testkit.Eventually(t, 5*time.Second, "16 connections held", func() bool { return r.proxy.Conns().Open == 16 })

	get(t, newClient(t), r.url("/"))
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Read(make([]byte, 1)); err == nil {
		t.Fatal("the oldest half-open connection was kept")
	}
}

func TestBusyConnectionsAreNeverEvicted(t *testing.T) {
	g := newGate()
	defer g.open()
	started := make(chan struct{}, 16)
	slow := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		started <- struct{}{}
		g.wait()
		io.WriteString(w, "done")
	}))
	opts := defaults
	opts.MaxConns = 16
	r := startProxy(t, opts, stable("slow", 1, slow.Addr()))

	answers := make(chan string, 16)
	for range 16 {
		go func() {
			c := newClient(t)
			code, body := get(t, c, r.url("/"))
			answers <- strings.TrimSpace(http.StatusText(code) + " " + body)
		}()
	}
	for range 16 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("16 requests did not reach the upstream")
		}
	}
	// The set is full of busy connections: a new one is closed unanswered.
	c := rawConn(t, r.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Error("a 17th connection was served while 16 were busy")
	}
	if s := r.proxy.Conns(); s.Refused == 0 || s.Evicted != 0 {
		t.Errorf("refused %d, evicted %d; want one refused, none evicted", s.Refused, s.Evicted)
	}
	g.open()
	for range 16 {
		if a := <-answers; a != "OK done" {
			t.Errorf("a busy request ended %q", a)
		}
	}
}

func TestATricklingHeadIsCutAtTheHeaderTimeout(t *testing.T) {
	b := testkit.StartBackend(t, "v1")
	opts := defaults
	opts.HeaderTimeout = 300 * time.Millisecond
	r := startProxy(t, opts, stable("v1", 1, b.Addr()))

	c := rawConn(t, r.addr)
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, c)
		closed <- time.Since(start)
	}()
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 100)
	for i := 0; i < len(head); i++ {
		if _, err := c.Write([]byte{head[i]}); err != nil {
			break
		}
		select {
		case d := <-closed:
			if d > 2*time.Second {
				t.Errorf("closed after %v, want about the 300ms header timeout", d)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("a head trickled for %v and the connection is still open", time.Since(start))
}

func TestAnIdleKeepAliveOutlivesTheHeaderTimeout(t *testing.T) {
	b := testkit.StartBackend(t, "v1")
	opts := defaults
	opts.HeaderTimeout = 200 * time.Millisecond
	opts.IdleTimeout = 10 * time.Second
	r := startProxy(t, opts, stable("v1", 1, b.Addr()))

	c := rawConn(t, r.addr)
	br := bufio.NewReader(c)
	for i := range 2 {
		if i == 1 {
			time.Sleep(500 * time.Millisecond) // idle, longer than the header timeout
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the connection: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestAWebSocketOutlivesTheHeaderTimeout(t *testing.T) {
	addr, _ := wsBackend(t)
	opts := defaults
	opts.HeaderTimeout = 200 * time.Millisecond
	r := startProxy(t, opts, stable("ws", 1, addr))
	c := rawConn(t, r.addr)
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+wsKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	io.WriteString(c, "still there\n")
	if line, err := br.ReadString('\n'); err != nil || line != "still there\n" {
		t.Fatalf("after a quiet spell longer than the header timeout: %q, %v", line, err)
	}
}
