package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// hasToken reports whether a comma-separated header lists token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// wsBackend is a minimal WebSocket upstream: it switches protocols, greets,
// and then echoes every byte. It hands the upgrade request it got to the
// test.
func wsBackend(t *testing.T) (string, <-chan *http.Request) {
	got := make(chan *http.Request, 4)
	addr := rawBackend(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		req, err := readHead(br)
		if err != nil {
			return
		}
		got <- req
		if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") ||
			!hasToken(req.Header["Connection"], "upgrade") {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n"+
			"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+wsAccept(req.Header.Get("Sec-WebSocket-Key"))+"\r\n"+
			"\r\nhello from upstream\n")
		io.Copy(c, br)
	})
	return addr, got
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	spellings := []struct {
		name    string
		headers string
	}{
		{"canonical", "Upgrade: websocket\r\nConnection: Upgrade\r\n"},
		{"lower case", "upgrade: websocket\r\nconnection: keep-alive, upgrade\r\n"},
	}
	for _, sp := range spellings {
		t.Run(sp.name, func(t *testing.T) {
			addr, got := wsBackend(t)
			r := startProxy(t, defaults, stable("ws", 1, addr))
			c := rawConn(t, r.addr)
			io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: app.example\r\n"+sp.headers+
				"Sec-WebSocket-Key: "+wsKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
				!hasToken(resp.Header["Connection"], "upgrade") {
				t.Errorf("the 101 says Upgrade %q, Connection %q", resp.Header.Get("Upgrade"), resp.Header["Connection"])
			}
			if a := resp.Header.Get("Sec-WebSocket-Accept"); a != wsAccept(wsKey) {
				t.Errorf("Sec-WebSocket-Accept %q, want %q", a, wsAccept(wsKey))
			}

			req := <-got
			if req.Host != "app.example" || req.RequestURI != "/chat" {
				t.Errorf("the upstream got %s %s", req.Host, req.RequestURI)
			}
			if req.Header.Get("X-Forwarded-For") != "127.0.0.1" {
				t.Errorf("the upstream got X-Forwarded-For %q", req.Header.Get("X-Forwarded-For"))
			}

			// Upstream to client, then both ways.
			if line, err := br.ReadString('\n'); err != nil || line != "hello from upstream\n" {
				t.Fatalf("the greeting: %q, %v", line, err)
			}
			for _, msg := range []string{"ping 1\n", "ping 2\n", strings.Repeat("x", 64<<10) + "\n"} {
				if _, err := io.WriteString(c, msg); err != nil {
					t.Fatal(err)
				}
				if line, err := br.ReadString('\n'); err != nil || line != msg {
					t.Fatalf("echo of %d bytes: got %d bytes, %v", len(msg), len(line), err)
				}
			}
			if n := r.upstream(t, "ws").Stats.InFlight(); n != 1 {
				t.Errorf("%d requests in flight during the session, want 1", n)
			}
			c.Close()
			r.idle(t)
		})
	}
}

func TestRefusedUpgradeIsPassedOn(t *testing.T) {
	addr := rawBackend(t, func(c *net.TCPConn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nX-Why: origin\r\n\r\nforbidden")
	})
	r := startProxy(t, defaults, stable("ws", 1, addr))
	resp, body := rawRequest(t, r.addr, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+wsKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || body != "forbidden" {
		t.Errorf("got %d %q, want the upstream's 403", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Why") != "origin" {
		t.Errorf("the upstream's headers were lost: %v", resp.Header)
	}
	if n := r.errors(t, "ws"); n != 0 {
		t.Errorf("a refused upgrade counted %d errors", n)
	}
}

// An upgrade to an upstream that is down goes to another one, as any
// request whose connection was refused does.
func TestUpgradeToRefusingUpstreamIsRetried(t *testing.T) {
	addr, _ := wsBackend(t)
	r := startProxy(t, defaults, canary("down", 1, testkit.FreeAddr(t)), stable("ws", 1, addr))
	c := rawConn(t, r.addr)
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+wsKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d, want 101 from the live upstream", resp.StatusCode)
	}
	if n := r.errors(t, "down"); n != 1 {
		t.Errorf("the refusing upstream counted %d errors, want 1", n)
	}
}

// A WebSocket session ends on both sides when the client leaves: the
// upstream connection is not left open.
func TestUpgradedSessionEndsWithTheClient(t *testing.T) {
	closed := make(chan struct{})
	addr := rawBackend(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(io.Discard, br)
		close(closed)
	})
	r := startProxy(t, defaults, stable("ws", 1, addr))
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	head := make([]byte, len("HTTP/1.1 101"))
	if _, err := io.ReadFull(c, head); err != nil || !bytes.Equal(head, []byte("HTTP/1.1 101")) {
		t.Fatalf("got %q, %v", head, err)
	}
	c.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection stayed open after the client left")
	}
	r.idle(t)
}
