package web

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/canary-pi/canary-pi/appliance/analysis"
)

// TestMetricsPassPromlint: names, units and help follow Prometheus's
// conventions, as promtool check metrics has them.
func TestMetricsPassPromlint(t *testing.T) {
	c := collector{snapshot: func() Snapshot {
		return Snapshot{
			State: "canary", CanaryVersion: "v2", CanaryPercent: 33.3, Verdict: analysis.Good, HasVerdict: true,
			ConfigGeneration: 1, ConfigValid: true,
			Upstreams: []UpstreamSnapshot{{Name: "w1", Role: "stable", Weight: 1, Healthy: true,
				LatencyBounds: []float64{0.1}, LatencyBuckets: []uint64{1}, LatencyCount: 1, LatencySum: 0.05}},
		}
	}}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
