package proxy_test

import (
	"net/http"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// versions is every X-Canary-Version line of h, in any spelling.
func versions(h http.Header) []string { return h.Values("X-Canary-Version") }

func TestTheCanaryVersionReachesOnlyTheCanary(t *testing.T) {
	stableBE, stableGot := recorder(t)
	canaryBE, canaryGot := recorder(t)
	r := startProxyPolicy(t, defaults, versioned,
		stable("v1", 1, stableBE.Addr()), canary("v2", 1, canaryBE.Addr()))
	spoofs := []string{"", "X-Canary-Version: v2\r\n", "x-canary-version: evil\r\nX-CANARY-VERSION: evil2\r\n"}
	for _, spoof := range spoofs {
		for range 2 { // one request to each, by round-robin
			rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\n"+spoof+"Connection: close\r\n\r\n")
		}
		s, c := receive(t, stableGot), receive(t, canaryGot)
		if v := versions(s.header); len(v) != 0 {
			t.Errorf("spoofed %q: the stable upstream got X-Canary-Version %q, want none", spoof, v)
		}
		if v := versions(c.header); len(v) != 1 || v[0] != "v2" {
			t.Errorf("spoofed %q: the canary got X-Canary-Version %q, want [v2]", spoof, v)
		}
	}
}

func TestAnEmptyVersionHeaderSendsNoVersion(t *testing.T) {
	be, got := recorder(t)
	r := startProxyPolicy(t, defaults, config.CanaryPolicy{Version: "v2"}, canary("v2", 1, be.Addr()))
	rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
	if v := versions(receive(t, got).header); len(v) != 0 {
		t.Errorf("with canary.version_header = \"\", the canary got X-Canary-Version %q, want none", v)
	}
}

func TestARetryFromTheCanaryToStableCarriesNoVersion(t *testing.T) {
	be, got := recorder(t)
	// The canary, picked first at 10:1, refuses: the GET is retried on the
	// stable upstream.
	r := startProxyPolicy(t, defaults, versioned,
		canary("v2", 10, testkit.FreeAddr(t)), stable("v1", 1, be.Addr()))
	resp, _ := rawRequest(t, r.addr, "GET / HTTP/1.1\r\nHost: app\r\nX-Canary-Version: v2\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 from the retry", resp.StatusCode)
	}
	if r.failures(t, "v2") != 1 {
		t.Fatalf("the canary failed %d times, want 1: the test did not go through it", r.failures(t, "v2"))
	}
	if v := versions(receive(t, got).header); len(v) != 0 {
		t.Errorf("the retry on the stable upstream carried X-Canary-Version %q, want none", v)
	}
}
