package proxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// peerServer accepts connections on loopback and answers every line read
// with "ok", on each connection until it sends close: then it closes it.
func peerServer(t *testing.T) (addr string, accepted chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, "ok\n")
					if line == "close\n" {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

// dialWatched is an upstreamConn to addr as the pool makes one, whose
// checks are counted in *peeks.
func dialWatched(t *testing.T, addr string, peeks *int) *upstreamConn {
	t.Helper()
	dial := func() (net.Conn, error) { return net.Dial("tcp", addr) }
	nc, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	c := &upstreamConn{timeout: 5 * time.Second, redial: dial}
	c.use(nc)
	peek := c.peek
	c.peek = func(fd uintptr) bool { *peeks++; return peek(fd) }
	t.Cleanup(func() { c.Close() })
	return c
}

func exchange(t *testing.T, c *upstreamConn, br **bufio.Reader, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatalf("writing %q: %v", line, err)
	}
	if *br == nil {
		*br = bufio.NewReader(c)
	}
	if got, err := (*br).ReadString('\n'); err != nil || got != "ok\n" {
		t.Fatalf("answer to %q: %q, %v", line, got, err)
	}
}

func TestFreshlyReusedConnectionIsNotPeeked(t *testing.T) {
	addr, _ := peerServer(t)
	var peeks int
	c := dialWatched(t, addr, &peeks)
	var br *bufio.Reader
	for range 3 {
		exchange(t, c, &br, "hello\n")
	}
	if peeks != 0 {
		t.Errorf("a connection reused at once was peeked %d times", peeks)
	}
}

func TestConnectionClosedWhileIdleIsReplaced(t *testing.T) {
	addr, accepted := peerServer(t)
	var peeks int
	c := dialWatched(t, addr, &peeks)
	var br *bufio.Reader
	exchange(t, c, &br, "close\n") // the upstream closes it after answering
	<-accepted
	time.Sleep(peekAfter + 50*time.Millisecond)
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatalf("the request after the idle close failed: %v", err)
	}
	if peeks != 1 {
		t.Errorf("peeked %d times, want once", peeks)
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the closed connection was not replaced by a new one")
	}
	br = bufio.NewReader(c)
	if got, err := br.ReadString('\n'); err != nil || got != "ok\n" {
		t.Fatalf("answer on the new connection: %q, %v", got, err)
	}
}
