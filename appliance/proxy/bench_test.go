package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// BenchmarkProxyGET is one keep-alive client sending small GETs through the
// proxy to one backend, all on loopback: the proxy's cost per request, with
// the client's and the backend's on top. The client writes and reads raw
// HTTP so that its own cost stays small.
func BenchmarkProxyGET(b *testing.B) {
	be := benchBackend(b)
	r := startProxy(b, defaults,
		stable("v1", 10, be),
		canary("v2", 5, be))
	benchGET(b, r)
}

// BenchmarkCanaryJournal is BenchmarkProxyGET with every request on the
// canary, with X-Canary-Version, and the journal off and on: what a record
// costs.
func BenchmarkCanaryJournal(b *testing.B) {
	be := benchBackend(b)
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		b.Run(name, func(b *testing.B) {
			r := startProxyPolicy(b, defaults, versioned, canary("v2", 1, be))
			if on {
				r.proxy.SetJournal(journal.New(100_000, 0))
			}
			benchGET(b, r)
		})
	}
}

func benchBackend(b *testing.B) string {
	return testkit.Serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})).Addr()
}

func benchGET(b *testing.B, r *rig) {
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	request := []byte("GET /bench?q=1 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")

	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(request); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Wall time per request is mostly the hand-offs between three parties
	// on two cores; the CPU time they spent is what to compare.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time the test process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWholeRequest is one request through the whole proxy (client
// connection, head checks, routing, the upstream pool, the response relay)
// over in-memory connections, so that no kernel time is counted: the
// proxy's own cost per request and its allocations. "everything" has on
// what a user would turn on: a 10:5 canary with X-Canary-Version, request
// ids, a sticky header and the journal.
func BenchmarkWholeRequest(b *testing.B) {
	request := []byte("GET /bench?q=1 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: bench\r\nAccept: */*\r\nX-User-ID: user-17\r\n\r\n")
	for _, tt := range []struct {
		name    string
		policy  config.CanaryPolicy
		journal bool
	}{
		{"plain", config.CanaryPolicy{}, false},
		{"everything", config.CanaryPolicy{Version: "v2", VersionHeader: "X-Canary-Version", StickyHeader: "X-User-ID"}, true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			up := fasthttputil.NewInmemoryListener()
			b.Cleanup(func() { up.Close() })
			go func() {
				for {
					c, err := up.Accept()
					if err != nil {
						return
					}
					go serveQuietly(c)
				}
			}()
			opts := defaults
			opts.Logger = slog.New(slog.DiscardHandler)
			opts.Dial = func(string) (net.Conn, error) { return up.Dial() }
			ups := []config.Upstream{stable("v1", 10, "v1.internal:80"), stable("v1b", 5, "v1b.internal:80")}
			if tt.policy.Version != "" {
				ups[1] = canary("v2", 5, "v2.internal:80")
			}
			cfg := &config.Config{Upstreams: ups, Canary: tt.policy}
			mode := state.NoCanary
			if cfg.HasCanary() {
				mode = state.Canary
			}
			router := route.NewRouter(route.NewPlan(cfg, mode, nil))
			p := proxy.New(router, opts)
			p.Prepare(router.Plan())
			if tt.journal {
				p.SetJournal(journal.New(100_000, 0))
			}
			ln := fasthttputil.NewInmemoryListener()
			go p.Serve(ln)
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				p.Shutdown(ctx)
			})
			c, err := ln.Dial()
			if err != nil {
				b.Fatal(err)
			}
			q := &quietClient{c: c}
			for range 100 {
				q.roundTrip(b, request)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				q.roundTrip(b, request)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// serveQuietly answers every request head on c with a fixed 200,
// allocating nothing itself.
func serveQuietly(c net.Conn) {
	defer c.Close()
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	var buf [16 << 10]byte
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
			n = copy(buf[:], buf[end+4:n])
		}
	}
}
