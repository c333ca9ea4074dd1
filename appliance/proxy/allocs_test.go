package proxy_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/proxy"
)

// quietBackend answers every GET on its connections with a fixed 200,
// allocating nothing per request itself, so that what testing.AllocsPerRun
// counts is the proxy's.
func quietBackend(t testing.TB) string {
	return rawBackend(t, func(c *net.TCPConn) { serveQuietly(c) })
}

// quietClient sends request on one keep-alive connection to addr and reads
// a response of a known length, allocating nothing per request itself.
type quietClient struct {
	c   net.Conn
	buf [16 << 10]byte
}

func newQuietClient(t testing.TB, addr string) *quietClient {
	return &quietClient{c: rawConn(t, addr)}
}

// roundTrip sends request and returns the head of its response, whose body
// is the 5 bytes quietBackend sends.
func (q *quietClient) roundTrip(t testing.TB, request []byte) []byte {
	q.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := q.c.Write(request); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := q.c.Read(q.buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
		if end := bytes.Index(q.buf[:n], []byte("\r\n\r\n")); end >= 0 && n >= end+4+5 {
			return q.buf[:end]
		}
	}
}

// countsAllocs skips a test that counts allocations under the race
// detector, which allocates on its own. It comes before the proxy starts:
// fasthttp's Serve misses a Shutdown that came before it began.
func countsAllocs(t *testing.T) {
	if race {
		t.Skip("the race detector allocates on its own")
	}
}

// proxyAllocs is how many allocations one GET through r costs, client and
// backend allocating nothing.
func proxyAllocs(t *testing.T, r *rig, request []byte) float64 {
	q := newQuietClient(t, r.addr)
	for range 100 {
		q.roundTrip(t, request)
	}
	return testing.AllocsPerRun(2000, func() { q.roundTrip(t, request) })
}

var quietGET = []byte("GET /allocs?token=secret HTTP/1.1\r\nHost: app.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")

func TestAStableRequestAllocatesNothingNewForItsIDOrTheJournal(t *testing.T) {
	countsAllocs(t)
	be := quietBackend(t)
	r := startProxy(t, defaults, stable("v1", 1, be))
	off := proxyAllocs(t, r, quietGET)
	r.proxy.SetJournal(journal.New(1000, 4096))
	on := proxyAllocs(t, r, quietGET)
	t.Logf("allocations per stable request: %.2f with the journal off, %.2f on", off, on)
	if on > off {
		t.Errorf("a stable request allocates %.2f times with the journal on, %.2f with it off", on, off)
	}
	if off > stableAllocs {
		t.Errorf("a stable request allocates %.2f times, want at most %v", off, stableAllocs)
	}
}

// stableAllocs is what a GET costs, all of it in fasthttp's client: a
// streamed response body is a clientStreamBody and three closures per
// round trip (BenchmarkWholeRequest's memory profile). canaryd's own code
// allocates nothing per request.
const stableAllocs = 4

func TestACanaryRequestAllocatesNothingForTheJournal(t *testing.T) {
	countsAllocs(t)
	be := quietBackend(t)
	r := startProxyPolicy(t, defaults, versioned, canary("v2", 1, be))
	off := proxyAllocs(t, r, quietGET)
	j := journal.New(1000, 0)
	r.proxy.SetJournal(j)
	on := proxyAllocs(t, r, quietGET)
	t.Logf("allocations per canary request: %.2f with the journal off, %.2f on", off, on)
	if on > off {
		t.Errorf("a canary request allocates %.2f times with the journal on, %.2f with it off", on, off)
	}
	if j.Seq() == 0 {
		t.Error("the journal recorded nothing")
	}
	if off > stableAllocs {
		t.Errorf("a canary request allocates %.2f times with the journal off, want at most %v, as a stable one", off, stableAllocs)
	}
}

// debugSink takes every record and keeps none: the proxy's debug log
// switched on, writing nowhere.
type debugSink struct{}

func (debugSink) Enabled(context.Context, slog.Level) bool  { return true }
func (debugSink) Handle(context.Context, slog.Record) error { return nil }
func (h debugSink) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h debugSink) WithGroup(string) slog.Handler           { return h }

func TestDebugLogArgumentsAreNotBuiltWhileDebugIsOff(t *testing.T) {
	countsAllocs(t)
	// Nearly every request goes to the resetting canary first, which stays
	// in the rotation, and is retried on stable: the debug log's retry line.
	failing := canary("canary", 100, resetting(t))
	failing.MaxFails = 0
	be := quietBackend(t)
	allocs := func(l *slog.Logger) float64 {
		r := startProxy(t, proxy.Options{Logger: l}, failing, stable("stable", 1, be))
		return proxyAllocs(t, r, quietGET)
	}
	off := allocs(slog.New(slog.DiscardHandler))
	on := allocs(slog.New(debugSink{}))
	t.Logf("allocations per retried request: %.2f with debug off, %.2f on", off, on)
	if off >= on {
		t.Errorf("a retried request allocates %.2f times with debug off, %.2f with it on: its arguments are built either way", off, on)
	}
}
