package proxy

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestHeadScanSplits: however the connection's reads cut a stream of good
// pipelined requests, whose bodies are full of bare LFs, the scan finds
// nothing wrong; and it finds the one bad head in a stream however cut.
func TestHeadScanSplits(t *testing.T) {
	body := strings.Repeat("a\nb\n\n", 30)
	good := "\r\nGET /1 HTTP/1.1\r\nHost: a\r\nUpgrade-Insecure-Requests: 1\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\ncontent-length : 150\r\n\r\n" + body +
		"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length:150\r\n\r\n" + body +
		"GET /4 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /5 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n" + body + "\r\n0\r\n\r\n" +
		"GET /6 HTTP/1.1\nHost: a\n\n" // after a chunked body: not watched
	bad := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 150\r\n\r\n" + body +
		"GET /3 HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n"
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		for _, tc := range []struct {
			stream string
			badAt  int
		}{{good, 0}, {bad, 3}} {
			var s headScan
			s.begin()
			rest := []byte(tc.stream)
			for len(rest) > 0 && s.on {
				n := 1 + rng.IntN(min(len(rest), 64))
				s.scan(rest[:n])
				rest = rest[n:]
			}
			if s.badAt != tc.badAt {
				t.Fatalf("bare LF found in request %d, want %d (%q)", s.badAt, tc.badAt, tc.stream[:20])
			}
		}
	}
}

// BenchmarkHeadChecks is what the checks cost a typical browser request:
// the scan of its bytes as they arrive and misframed on its head.
func BenchmarkHeadChecks(b *testing.B) {
	head := "Host: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux aarch64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nCookie: uid=12345; theme=dark\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"
	raw := []byte("GET /index.html HTTP/1.1\r\n" + head)
	block := []byte(head)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var s headScan
	for b.Loop() {
		s.begin()
		s.scan(raw)
		if misframed(block) != "" {
			b.Fatal("misframed")
		}
	}
}
