package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/journal"
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
