package proxy_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// seen is what a backend received.
type seen struct {
	host       string
	requestURI string
	header     http.Header
}

// recorder is a backend that answers "ok" and hands every request it gets
// to the test.
func recorder(t *testing.T) (*testkit.Server, <-chan seen) {
	got := make(chan seen, 16)
	b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.RequestURI, r.Header.Clone()}
		io.WriteString(w, "ok")
	}))
	return b, got
}

func receive(t *testing.T, got <-chan seen) seen {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no request")
		return seen{}
	}
}

// hopByHop are the headers that belong to a single connection and must
// never cross the proxy (RFC 9110 section 7.6.1), with what a client or an
// upstream might send in them.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection",
	"Proxy-Authorization", "Proxy-Authenticate", "Te", "Upgrade", "X-Foo"}

func TestHopByHopHeadersAreStripped(t *testing.T) {
	// Header names are case-insensitive; clients and upstreams (hyper, h2
	// gateways) often send them in lower case.
	spellings := []struct {
		name string
		fix  func(string) string
	}{
		{"canonical", func(s string) string { return s }},
		{"lower case", strings.ToLower},
	}
	for _, sp := range spellings {
		t.Run("request/"+sp.name, func(t *testing.T) {
			b, got := recorder(t)
			r := startProxy(t, defaults, stable("s", 1, b.Addr()))
			h := sp.fix
			resp, body := rawRequest(t, r.addr, "GET /h HTTP/1.1\r\n"+
				"Host: app.example\r\n"+
				h("Connection")+": keep-alive, "+h("X-Foo")+"\r\n"+
				"X-Foo: listed in Connection\r\n"+
				h("Keep-Alive")+": timeout=5\r\n"+
				h("Proxy-Connection")+": keep-alive\r\n"+
				h("Proxy-Authorization")+": Basic Zm9vOmJhcg==\r\n"+
				h("TE")+": trailers\r\n"+
				h("Upgrade")+": h2c\r\n"+
				"Authorization: Bearer end-to-end\r\n"+
				"X-Keep: end-to-end\r\n"+
				"\r\n")
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
			}
			s := receive(t, got)
			for _, name := range hopByHop {
				if v, ok := s.header[name]; ok {
					t.Errorf("the upstream got %s: %q", name, v)
				}
			}
			for _, name := range []string{"Authorization", "X-Keep"} {
				if s.header.Get(name) == "" {
					t.Errorf("the upstream did not get the end-to-end header %s", name)
				}
			}
		})
		t.Run("response/"+sp.name, func(t *testing.T) {
			h := sp.fix
			addr := rawBackend(t, func(c *net.TCPConn) {
				br := bufio.NewReader(c)
				for {
					if _, err := readHead(br); err != nil {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
						"Content-Length: 2\r\n"+
						h("Connection")+": "+h("X-Foo")+"\r\n"+
						"X-Foo: listed in Connection\r\n"+
						h("Keep-Alive")+": timeout=5, max=100\r\n"+
						h("Proxy-Connection")+": keep-alive\r\n"+
						h("Proxy-Authenticate")+": Basic realm=\"x\"\r\n"+
						h("Upgrade")+": h2c\r\n"+
						"X-Keep: end-to-end\r\n"+
						"\r\nok")
				}
			})
			r := startProxy(t, defaults, stable("s", 1, addr))
			resp, body := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
			}
			for _, name := range hopByHop {
				if v, ok := resp.Header[name]; ok {
					t.Errorf("the client got %s: %q", name, v)
				}
			}
			if resp.Header.Get("X-Keep") == "" {
				t.Error("the client did not get the end-to-end header X-Keep")
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers string // the client's, besides Host
		xff     string // X-Forwarded-For as the upstream reads it
	}{
		{"first proxy", "", "127.0.0.1"},
		{"appended to the client's", "X-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7, 127.0.0.1"},
		{"appended to a list", "X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n", "203.0.113.7, 198.51.100.2, 127.0.0.1"},
		{"appended after every line", "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\n",
			"203.0.113.7, 198.51.100.2, 127.0.0.1"},
		{"appended in lower case", "x-forwarded-for: 203.0.113.7\r\n", "203.0.113.7, 127.0.0.1"},
		// The scheme and the host are ours to say: a client must not make
		// the upstream believe it came over TLS or to another name.
		{"scheme and host replaced", "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n", "127.0.0.1"},
		{"scheme and host replaced in lower case", "x-forwarded-proto: https\r\nx-forwarded-host: evil.example\r\n", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, got := recorder(t)
			r := startProxy(t, defaults, stable("s", 1, b.Addr()))
			resp, _ := rawRequest(t, r.addr, "GET /where?x=1 HTTP/1.1\r\nHost: app.example:8443\r\n"+tt.headers+"\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			s := receive(t, got)
			if s.host != "app.example:8443" {
				t.Errorf("Host %q, want the client's app.example:8443", s.host)
			}
			if got := strings.Join(s.header.Values("X-Forwarded-For"), ", "); got != tt.xff {
				t.Errorf("X-Forwarded-For %q, want %q", got, tt.xff)
			}
			if got := s.header.Values("X-Forwarded-Proto"); !slices.Equal(got, []string{"http"}) {
				t.Errorf("X-Forwarded-Proto %q, want [http]", got)
			}
			if got := s.header.Values("X-Forwarded-Host"); !slices.Equal(got, []string{"app.example:8443"}) {
				t.Errorf("X-Forwarded-Host %q, want [app.example:8443]", got)
			}
		})
	}
}

// An HTTP/1.0 client may leave out Host. The upstream is then asked by its
// own name, and nobody is blamed.
func TestHTTP10RequestWithoutHost(t *testing.T) {
	b, got := recorder(t)
	r := startProxy(t, defaults, stable("s", 1, b.Addr()), canary("c", 1, testkit.StartBackend(t, "c").Addr()))
	resp, body := rawRequest(t, r.addr, "GET /old HTTP/1.0\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if s := receive(t, got); s.host != b.Addr() {
		t.Errorf("the upstream got Host %q, want its own address %s", s.host, b.Addr())
	}
	for _, name := range []string{"s", "c"} {
		if n := r.errors(t, name); n != 0 {
			t.Errorf("%s counted %d errors", name, n)
		}
	}
}

// The request target reaches the upstream byte for byte: no cleaning of
// dot segments, double slashes or escapes, which would change what an
// upstream routes on.
func TestRequestTargetIsPassedUnchanged(t *testing.T) {
	targets := []string{
		"/plain",
		"/a/../b/./c",
		"//double//slashes/",
		"/escaped%2Fslash/%41%20space",
		"/q?x=1&y=%20&z=a+b&x=2",
		"/unicode/%C3%A9t%C3%A9",
	}
	b, got := recorder(t)
	r := startProxy(t, defaults, stable("s", 1, b.Addr()))
	for _, target := range targets {
		resp, _ := rawRequest(t, r.addr, "GET "+target+" HTTP/1.1\r\nHost: app.example\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", target, resp.StatusCode)
			continue
		}
		if s := receive(t, got); s.requestURI != target {
			t.Errorf("sent %s, the upstream got %s", target, s.requestURI)
		}
	}
}

// A HEAD answer keeps the length the upstream gave and carries no body, so
// the client connection stays usable for the next request.
func TestHeadKeepsContentLength(t *testing.T) {
	b := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "11")
		io.WriteString(w, "hello world")
	}))
	r := startProxy(t, defaults, stable("s", 1, b.Addr()))
	c := rawConn(t, r.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")

	head, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK || head.Header.Get("Content-Length") != "11" {
		t.Errorf("HEAD: %d, Content-Length %q, want 200 and 11", head.StatusCode, head.Header.Get("Content-Length"))
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the GET after the HEAD: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "hello world" {
		t.Errorf("the GET after the HEAD: %q, %v", body, err)
	}
}

// End-to-end headers reach the other side as they were sent: every line of
// a repeated header, in order, and nothing made up beside them but the
// proxy's own Date, which replaces the upstream's as in nginx.
func TestEndToEndHeadersPassUnchanged(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		b, got := recorder(t)
		r := startProxy(t, defaults, stable("s", 1, b.Addr()))
		rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: x\r\n"+
			"Connection: keep-alive\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Accept: text/html\r\n"+
			"Accept: application/json\r\n"+
			"Cookie: a=1\r\n"+
			"X-Repeated: 1\r\nX-Repeated: 2\r\nX-Repeated: 3\r\n"+
			"\r\n")
		s := receive(t, got)
		if v := s.header.Values("Accept"); !slices.Equal(v, []string{"text/html", "application/json"}) {
			t.Errorf("Accept %q", v)
		}
		if v := s.header.Values("X-Repeated"); !slices.Equal(v, []string{"1", "2", "3"}) {
			t.Errorf("X-Repeated %q, want 1 2 3 in order", v)
		}
		if v := s.header.Values("Cookie"); !slices.Equal(v, []string{"a=1"}) {
			t.Errorf("Cookie %q", v)
		}
	})
	t.Run("response", func(t *testing.T) {
		addr := rawBackend(t, func(c *net.TCPConn) {
			br := bufio.NewReader(c)
			for {
				if _, err := readHead(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 201 Created\r\n"+
					"Connection: keep-alive\r\n"+
					"Keep-Alive: timeout=5\r\n"+
					"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"+
					"Server: upstream/1.0\r\n"+
					"Set-Cookie: a=1; Path=/\r\n"+
					"Set-Cookie: b=2; Path=/\r\n"+
					"Link: </a>; rel=preload\r\nLink: </b>; rel=preload\r\nLink: </c>; rel=preload\r\n"+
					"Content-Length: 2\r\n"+
					"\r\nok")
			}
		})
		r := startProxy(t, defaults, stable("s", 1, addr))
		resp, body := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != http.StatusCreated || body != "ok" {
			t.Fatalf("got %d %q, want 201 ok", resp.StatusCode, body)
		}
		want := http.Header{
			"Server":     {"upstream/1.0"},
			"Set-Cookie": {"a=1; Path=/", "b=2; Path=/"},
			"Link":       {"</a>; rel=preload", "</b>; rel=preload", "</c>; rel=preload"},
		}
		for name, v := range want {
			if got := resp.Header.Values(name); !slices.Equal(got, v) {
				t.Errorf("%s %q, want %q", name, got, v)
			}
		}
		if v := resp.Header.Values("Content-Type"); len(v) != 0 {
			t.Errorf("the proxy added Content-Type %q", v)
		}
		if v := resp.Header.Values("Date"); len(v) != 1 {
			t.Errorf("Date %q, want one", v)
		} else if _, err := http.ParseTime(v[0]); err != nil {
			t.Errorf("Date %q: %v", v[0], err)
		}
	})
}

// TestOnlyATrustedProxysForwardingIsBelieved: behind a proxy named in
// proxy.trusted_proxies, the client is the last untrusted address of
// X-Forwarded-For and the proxy's scheme and host pass on; from anyone
// else the same headers are appended to or replaced, and the access log
// names the peer.
func TestOnlyATrustedProxysForwardingIsBelieved(t *testing.T) {
	const sent = "X-Forwarded-For: 198.51.100.9, 203.0.113.7, 127.0.0.5\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n"
	tests := []struct {
		name          string
		trusted       []netip.Prefix
		client, proto string
		host          string
	}{
		{"not trusted", nil, "127.0.0.1", "http", "app.example"},
		{"another network trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1", "http", "app.example"},
		{"loopback trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.7", "https", "shop.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, got := recorder(t)
			var log testkit.SyncBuffer
			opts := defaults
			opts.TrustedProxies = tt.trusted
			opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
			r := startProxy(t, opts, stable("s", 1, b.Addr()))
			r.proxy.SetAccessLog(true)
			resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app.example\r\n"+sent+"\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			s := receive(t, got)
			if xff := s.header.Get("X-Forwarded-For"); xff != "198.51.100.9, 203.0.113.7, 127.0.0.5, 127.0.0.1" {
				t.Errorf("X-Forwarded-For %q: appended to, whoever sent it", xff)
			}
			if got := s.header.Values("X-Forwarded-Proto"); !slices.Equal(got, []string{tt.proto}) {
				t.Errorf("X-Forwarded-Proto %q, want [%s]", got, tt.proto)
			}
			if got := s.header.Values("X-Forwarded-Host"); !slices.Equal(got, []string{tt.host}) {
				t.Errorf("X-Forwarded-Host %q, want [%s]", got, tt.host)
			}
			testkit.Eventually(t, 2*time.Second, "the access log entry", func() bool {
				return strings.Contains(log.String(), "REQUEST_ID=")
			})
			if !strings.Contains(log.String(), `msg="`+tt.client+" - - [") {
				t.Errorf("the access log names another client than %s:\n%s", tt.client, log.String())
			}
		})
	}
}
