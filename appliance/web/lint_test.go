package web

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/canary-pi/canary-pi/appliance/analysis"
)

// TestMetricsPassPromlint: names, units and help follow Prometheus's
// conventions, as promtool check metrics has them, for canaryd's families
// and the runtime's and process's.
func TestMetricsPassPromlint(t *testing.T) {
	e := expo{}
	write(&e, Snapshot{
		State: "canary", CanaryVersion: "v2", CanaryPercent: 33.3, Verdict: analysis.Good, HasVerdict: true,
		ConfigGeneration: 1, ConfigValid: true,
		Upstreams: []UpstreamSnapshot{{Name: "w1", Role: "stable", Weight: 1, Healthy: true,
			LatencyBounds: []float64{0.1}, LatencyBuckets: []uint64{1}, LatencyCount: 1, LatencySum: 0.05}},
	})
	writeRuntime(&e)
	writeProcess(&e)
	problems, err := promlint.New(bytes.NewReader(e.b)).Lint()
	if err != nil {
		t.Fatalf("%v in:\n%s", err, e.b)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
