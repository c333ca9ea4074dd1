package web

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// Snapshot is what /metrics exports, read once per scrape. The daemon keeps
// its own counters on the proxy's hot path and copies them here when asked,
// so serving a request never calls into Prometheus.
type Snapshot struct {
	State         state.Mode
	CanaryVersion string
	CanaryPercent float64 // share of new requests the canary gets now, 0..100

	// Verdict is the canary analysis's, when HasVerdict; without a canary
	// there is none.
	Verdict    analysis.State
	HasVerdict bool

	ConfigGeneration uint64
	ConfigErrors     uint64 // rejected reloads so far
	ConfigValid      bool   // false while the last reload was rejected

	Rollbacks map[state.Cause]uint64
	Upstreams []UpstreamSnapshot

	// Client connections: held now, the limit, and those closed at the
	// limit (waiting ones evicted for new ones; new ones refused when
	// every one was busy).
	ClientConns, ClientConnsMax  int
	ClientEvicted, ClientRefused uint64
}

// UpstreamSnapshot is one backend's counters since canaryd started.
type UpstreamSnapshot struct {
	Name     string
	Role     string // stable | canary
	Weight   int
	Healthy  bool
	InFlight int64

	// Responses counts requests by the class of their answer.
	Responses [route.NumClasses]uint64
	// Errors are the requests the canary analysis counts against an
	// upstream: 5xx responses and failed ones.
	Errors uint64

	// The latency histogram, in seconds: LatencyBuckets[i] is the number
	// of requests that took at most LatencyBounds[i] (cumulative, as
	// Prometheus has it); LatencyCount and LatencySum cover all of them,
	// so a +Inf bound is not needed.
	LatencyBuckets []uint64
	LatencyBounds  []float64
	LatencyCount   uint64
	LatencySum     float64
}

var upstreamLabels = []string{"upstream", "role"}

var (
	descState = prometheus.NewDesc("canaryd_state",
		"The rollout state: 1 for the current one (stable, canary, rolled_back, promoted), 0 for the others.",
		[]string{"state"}, nil)
	descCanaryInfo = prometheus.NewDesc("canaryd_canary_info",
		"The configured canary.version, as a label; absent without a canary.",
		[]string{"version"}, nil)
	descCanaryPercent = prometheus.NewDesc("canaryd_canary_percent",
		"Share of new requests that go to the canary now, in percent.", nil, nil)
	descVerdict = prometheus.NewDesc("canaryd_canary_verdict",
		"The canary analysis: 1 for the current verdict (good, bad, not_enough_traffic, shared_failure), 0 for the others; all 0 without a canary.",
		[]string{"verdict"}, nil)
	descRollbacks = prometheus.NewDesc("canaryd_rollbacks_total",
		"Rollbacks since canaryd started, by cause (command, button, auto, api).",
		[]string{"cause"}, nil)
	descConfigGeneration = prometheus.NewDesc("canaryd_config_generation",
		"Generation of the running config; it goes up with each applied reload.", nil, nil)
	descConfigErrors = prometheus.NewDesc("canaryd_config_errors_total",
		"Config reloads rejected since canaryd started.", nil, nil)
	descConfigValid = prometheus.NewDesc("canaryd_config_valid",
		"1 when the config directory validates, 0 while the last good config serves after a rejected one.", nil, nil)

	descResponses = prometheus.NewDesc("canaryd_upstream_responses_total",
		"Requests sent to an upstream, by status class (1xx to 5xx, or failed: refused, reset or timed out).",
		[]string{"upstream", "role", "class"}, nil)
	descErrors = prometheus.NewDesc("canaryd_upstream_errors_total",
		"Requests that count against an upstream in the canary analysis: 5xx responses and failures.",
		upstreamLabels, nil)
	descDuration = prometheus.NewDesc("canaryd_upstream_request_duration_seconds",
		"Time from sending a request to an upstream until its response headers arrived.",
		upstreamLabels, nil)
	descHealthy = prometheus.NewDesc("canaryd_upstream_healthy",
		"1 when the upstream takes requests, 0 while max_fails keeps it out.",
		upstreamLabels, nil)
	descInFlight = prometheus.NewDesc("canaryd_upstream_in_flight",
		"Requests at the upstream now.", upstreamLabels, nil)
	descWeight = prometheus.NewDesc("canaryd_upstream_weight",
		"The upstream's configured weight.", upstreamLabels, nil)

	descClientConns = prometheus.NewDesc("canaryd_client_connections",
		"Client connections held now.", nil, nil)
	descClientConnsMax = prometheus.NewDesc("canaryd_client_connections_max",
		"proxy.max_connections: client connections held at most.", nil, nil)
	descClientClosed = prometheus.NewDesc("canaryd_client_connections_closed_total",
		"Client connections closed at proxy.max_connections: evicted (waiting for a request, closed for a new one) or refused (new, when every one was busy).",
		[]string{"reason"}, nil)
)

// collector turns a Snapshot into metrics at scrape time.
type collector struct {
	snapshot func() Snapshot
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descState, descCanaryInfo, descCanaryPercent, descVerdict, descRollbacks,
		descConfigGeneration, descConfigErrors, descConfigValid,
		descResponses, descErrors, descDuration, descHealthy, descInFlight, descWeight,
		descClientConns, descClientConnsMax, descClientClosed,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			// A label value that is not UTF-8, say: one broken series,
			// reported by promhttp, and the rest of the scrape goes on.
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}

	// Every value of a label appears, so that a dashboard's rate() and
	// "== 1" work from the first scrape, before anything happened.
	oneOf(s.State, state.Modes(), func(m state.Mode, v float64) { send(descState, prometheus.GaugeValue, v, string(m)) })
	if s.CanaryVersion != "" {
		send(descCanaryInfo, prometheus.GaugeValue, 1, s.CanaryVersion)
	}
	send(descCanaryPercent, prometheus.GaugeValue, s.CanaryPercent)
	for _, verdict := range analysis.States() {
		send(descVerdict, prometheus.GaugeValue, bool01(s.HasVerdict && verdict == s.Verdict), verdict.String())
	}
	for _, cause := range withKeys(state.Causes(), s.Rollbacks) {
		send(descRollbacks, prometheus.CounterValue, float64(s.Rollbacks[cause]), string(cause))
	}
	send(descConfigGeneration, prometheus.GaugeValue, float64(s.ConfigGeneration))
	send(descConfigErrors, prometheus.CounterValue, float64(s.ConfigErrors))
	send(descConfigValid, prometheus.GaugeValue, bool01(s.ConfigValid))
	send(descClientConns, prometheus.GaugeValue, float64(s.ClientConns))
	send(descClientConnsMax, prometheus.GaugeValue, float64(s.ClientConnsMax))
	send(descClientClosed, prometheus.CounterValue, float64(s.ClientEvicted), "evicted")
	send(descClientClosed, prometheus.CounterValue, float64(s.ClientRefused), "refused")

	for _, u := range s.Upstreams {
		for class, n := range u.Responses {
			send(descResponses, prometheus.CounterValue, float64(n), u.Name, u.Role, route.Class(class).String())
		}
		send(descErrors, prometheus.CounterValue, float64(u.Errors), u.Name, u.Role)
		send(descHealthy, prometheus.GaugeValue, bool01(u.Healthy), u.Name, u.Role)
		send(descInFlight, prometheus.GaugeValue, float64(u.InFlight), u.Name, u.Role)
		send(descWeight, prometheus.GaugeValue, float64(u.Weight), u.Name, u.Role)
		ch <- histogram(u)
	}
}

func histogram(u UpstreamSnapshot) prometheus.Metric {
	if len(u.LatencyBuckets) != len(u.LatencyBounds) {
		return prometheus.NewInvalidMetric(descDuration, fmt.Errorf(
			"upstream %q: %d latency buckets for %d bounds", u.Name, len(u.LatencyBuckets), len(u.LatencyBounds)))
	}
	buckets := make(map[float64]uint64, len(u.LatencyBounds))
	for i, le := range u.LatencyBounds {
		if math.IsInf(le, +1) {
			continue // Prometheus's +Inf bucket is LatencyCount
		}
		buckets[le] = u.LatencyBuckets[i]
	}
	m, err := prometheus.NewConstHistogram(descDuration, u.LatencyCount, u.LatencySum, buckets, u.Name, u.Role)
	if err != nil {
		return prometheus.NewInvalidMetric(descDuration, err)
	}
	return m
}

// oneOf reports 1 for current and 0 for the rest of known; a current value
// outside known is reported too, rather than hidden.
func oneOf[T ~string](current T, known []T, report func(T, float64)) {
	for _, k := range known {
		report(k, bool01(k == current))
	}
	if current != "" && !slices.Contains(known, current) {
		report(current, 1)
	}
}

// withKeys returns known followed by m's other keys, sorted.
func withKeys[T ~string](known []T, m map[T]uint64) []T {
	keys := slices.Clone(known)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Metrics serves the Prometheus metrics: canaryd's own, read from snapshot
// once per scrape (it may be called from several scrapes at once), and the
// Go runtime's and the process's. They live in a registry of their own, so
// nothing registered globally by a library shows up or collides.
func Metrics(snapshot func() Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collector{snapshot: snapshot},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// One bad series must not cost the dashboards all the others.
		ErrorHandling: promhttp.ContinueOnError,
	})
}
