package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// requestIDs is every X-Request-Id line of h, in any spelling.
func requestIDs(h http.Header) []string { return h.Values("X-Request-Id") }

func TestAClientsRequestIDIsPassedOnAndEchoed(t *testing.T) {
	be, got := recorder(t)
	r := startProxy(t, defaults, stable("v1", 1, be.Addr()))
	for _, c := range []struct{ name, line, want string }{
		{"canonical", "X-Request-Id: abc-123", "abc-123"},
		{"lower case", "x-request-id: f00d", "f00d"},
		{"64 bytes", "X-Request-Id: " + strings.Repeat("z", 64), strings.Repeat("z", 64)},
		{"every printable byte", "X-Request-Id: !~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"},
	} {
		resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\n"+c.line+"\r\nConnection: close\r\n\r\n")
		up := receive(t, got)
		if ids := requestIDs(up.header); len(ids) != 1 || ids[0] != c.want {
			t.Errorf("%s: the upstream got X-Request-Id %q, want [%q]", c.name, ids, c.want)
		}
		if ids := requestIDs(resp.Header); len(ids) != 1 || ids[0] != c.want {
			t.Errorf("%s: the client got X-Request-Id %q, want [%q]", c.name, ids, c.want)
		}
	}
}

func TestAnInvalidRequestIDIsReplaced(t *testing.T) {
	be, got := recorder(t)
	r := startProxy(t, defaults, stable("v1", 1, be.Addr()))
	for _, c := range []struct{ name, lines, sent string }{
		{"too long", "X-Request-Id: " + strings.Repeat("z", 65) + "\r\n", strings.Repeat("z", 65)},
		{"a space", "X-Request-Id: a b\r\n", "a b"},
		// The one control byte a header value may hold: fasthttp refuses
		// a request with any other (400).
		{"a tab", "X-Request-Id: a\tb\r\n", "a\tb"},
		{"not ASCII", "X-Request-Id: caf\xc3\xa9\r\n", "caf\xc3\xa9"},
		{"empty", "X-Request-Id: \r\n", ""},
		{"none", "", ""},
	} {
		resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\n"+c.lines+"Connection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", c.name, resp.StatusCode)
			continue
		}
		up := receive(t, got)
		sent, echoed := requestIDs(up.header), requestIDs(resp.Header)
		if len(sent) != 1 || len(echoed) != 1 || sent[0] != echoed[0] {
			t.Errorf("%s: the upstream got X-Request-Id %q and the client %q, want one, the same", c.name, sent, echoed)
			continue
		}
		if sent[0] == c.sent || !validID(sent[0]) {
			t.Errorf("%s: the upstream got X-Request-Id %q, want a new, valid one", c.name, sent[0])
		}
	}
}

func TestOfSeveralRequestIDsTheFirstValidOneIsSentOnce(t *testing.T) {
	be, got := recorder(t)
	r := startProxy(t, defaults, stable("v1", 1, be.Addr()))
	resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\nX-Request-Id: a b\r\n"+
		"x-request-id: second\r\nX-Request-Id: third\r\nConnection: close\r\n\r\n")
	up := receive(t, got)
	if ids := requestIDs(up.header); len(ids) != 1 || ids[0] != "second" {
		t.Errorf("the upstream got X-Request-Id %q, want [second]", ids)
	}
	if ids := requestIDs(resp.Header); len(ids) != 1 || ids[0] != "second" {
		t.Errorf("the client got X-Request-Id %q, want [second]", ids)
	}
}

func TestTheUpstreamsOwnRequestIDIsNotPassedBack(t *testing.T) {
	be := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Request-Id", "the-upstreams")
	}))
	r := startProxy(t, defaults, stable("v1", 1, be.Addr()))
	resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\nX-Request-Id: mine\r\nConnection: close\r\n\r\n")
	if ids := requestIDs(resp.Header); len(ids) != 1 || ids[0] != "mine" {
		t.Errorf("the client got X-Request-Id %q, want [mine]", ids)
	}
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// responseID is the X-Request-Id of a response head as quietClient returns
// it.
func responseID(t testing.TB, head []byte) string {
	t.Helper()
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok && bytes.EqualFold(k, []byte("X-Request-Id")) {
			return string(v)
		}
	}
	t.Fatalf("no X-Request-Id in %q", head)
	return ""
}

func TestNewRequestIDsAreUniqueAcrossRequestsAndProxies(t *testing.T) {
	be := quietBackend(t)
	seen := map[string]int{}
	for p := range 2 {
		r := startProxy(t, defaults, stable("v1", 1, be))
		q := newQuietClient(t, r.addr)
		for range 10_000 {
			id := responseID(t, q.roundTrip(t, quietGET))
			if !validID(id) {
				t.Fatalf("proxy %d made the request id %q, not a valid one", p, id)
			}
			if other, ok := seen[id]; ok {
				t.Fatalf("proxy %d made the request id %q twice (before by proxy %d)", p, id, other)
			}
			seen[id] = p
		}
	}
}

func TestEveryErrorOfTheProxyCarriesTheRequestID(t *testing.T) {
	silent := rawBackend(t, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
	for _, c := range []struct {
		name   string
		up     string
		status int
	}{
		{"refused", testkit.FreeAddr(t), http.StatusBadGateway},
		{"timed out", silent, http.StatusGatewayTimeout},
	} {
		r := startProxy(t, proxy.Options{ReadTimeout: 200 * time.Millisecond}, stable("v1", 1, c.up))
		// The first request fails on the upstream; the second may find it
		// taken out (max_fails = 1, which nginx ignores for a lone one).
		for i, line := range []string{"X-Request-Id: client-1\r\n", ""} {
			resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\n"+line+"Connection: close\r\n\r\n")
			if resp.StatusCode != c.status && (i == 0 || resp.StatusCode != http.StatusBadGateway) {
				t.Errorf("%s, request %d: status %d, want %d", c.name, i+1, resp.StatusCode, c.status)
			}
			ids := requestIDs(resp.Header)
			if len(ids) != 1 || !validID(ids[0]) || (line != "" && ids[0] != "client-1") {
				t.Errorf("%s, request %d: the %d carries X-Request-Id %q, want one (the client's when it sent one)", c.name, i+1, resp.StatusCode, ids)
			}
		}
	}
}

func TestAWebSocketUpgradeCarriesTheRequestIDAndTheVersion(t *testing.T) {
	addr, got := wsBackend(t)
	r := startProxyPolicy(t, defaults, versioned, canary("ws", 1, addr))
	j := journal.New(10, 0)
	r.proxy.SetJournal(j)
	c := rawConn(t, r.addr)
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: app.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"X-Request-Id: ws-1\r\nX-Canary-Version: evil\r\n"+
		"Sec-WebSocket-Key: "+wsKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if ids := requestIDs(resp.Header); len(ids) != 1 || ids[0] != "ws-1" {
		t.Errorf("the 101 carries X-Request-Id %q, want [ws-1]", ids)
	}
	up := <-got
	if ids := requestIDs(up.Header); len(ids) != 1 || ids[0] != "ws-1" {
		t.Errorf("the upstream got X-Request-Id %q, want [ws-1]", ids)
	}
	if v := versions(up.Header); len(v) != 1 || v[0] != "v2" {
		t.Errorf("the canary got X-Canary-Version %q, want [v2]", v)
	}
	// The journal has it once the connection is done.
	c.Close()
	if rec := records(t, j, 1)[0]; rec.RequestID != "ws-1" || rec.Status != 101 || rec.Path != "/chat" || rec.Upstream != "ws" {
		t.Errorf("journal record %+v, want ws-1, 101, /chat on ws", rec)
	}
}
