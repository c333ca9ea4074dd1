package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

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
	// Evidence is each test's evidence against the canary and its
	// threshold, "errors" and "latency" (a test that is off is absent).
	Evidence map[string]analysis.Gauge

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

// UpstreamsOf is the /metrics snapshot of plan's upstreams at now.
func UpstreamsOf(plan *route.Plan, now time.Time) []UpstreamSnapshot {
	var ups []UpstreamSnapshot
	for _, u := range plan.Upstreams {
		counts, sum, bounds := u.Stats.Latency.Snapshot()
		cum := analysis.Cumulative(counts)
		us := UpstreamSnapshot{
			Name: u.Name, Role: string(u.Role), Weight: u.Weight,
			Healthy: u.Weight > 0 && plan.Healthy(u, now), InFlight: u.Stats.InFlight(),
			Errors:         u.Stats.Errors(),
			LatencyBounds:  bounds,
			LatencyBuckets: cum[:len(bounds)],
			LatencyCount:   cum[len(cum)-1],
			LatencySum:     sum.Seconds(),
		}
		for c := range u.Stats.Classes {
			us.Responses[c] = u.Stats.Classes[c].Load()
		}
		ups = append(ups, us)
	}
	return ups
}

// write writes canaryd's own families from s. Every value of a label
// appears, so that a dashboard's rate() and "== 1" work from the first
// scrape, before anything happened.
func write(e *expo, s Snapshot) {
	e.family("canaryd_state", "gauge", "The rollout state: 1 for the current one (stable, canary, rolled_back, promoted), 0 for the others.")
	oneOf(s.State, state.Modes(), func(m state.Mode, v float64) { e.sample("canaryd_state", v, "state", string(m)) })
	if s.CanaryVersion != "" {
		e.one("canaryd_canary_info", "gauge", "The configured canary.version, as a label; absent without a canary.", 1, "version", s.CanaryVersion)
	}
	e.one("canaryd_canary_percent", "gauge", "Share of new requests that go to the canary now, in percent.", s.CanaryPercent)
	e.family("canaryd_canary_verdict", "gauge", "The canary analysis: 1 for the current verdict (good, bad, not_enough_traffic, shared_failure), 0 for the others; all 0 without a canary.")
	for _, verdict := range analysis.States() {
		e.sample("canaryd_canary_verdict", bool01(s.HasVerdict && verdict == s.Verdict), "verdict", verdict.String())
	}
	if s.HasVerdict && len(s.Evidence) > 0 {
		tests := slices.Sorted(maps.Keys(s.Evidence))
		e.family("canaryd_canary_evidence", "gauge", "The verdict's evidence against the canary, per test (errors, latency): a likelihood ratio, 1 before any; the verdict turns bad at canaryd_canary_evidence_threshold.")
		for _, test := range tests {
			e.sample("canaryd_canary_evidence", s.Evidence[test].Evidence, "test", test)
		}
		e.family("canaryd_canary_evidence_threshold", "gauge", "The evidence at which a test judges the canary bad: 1/false_alarm, split between the tests.")
		for _, test := range tests {
			e.sample("canaryd_canary_evidence_threshold", s.Evidence[test].Threshold, "test", test)
		}
	}
	e.family("canaryd_rollbacks_total", "counter", "Rollbacks since canaryd started, by cause (command, button, auto, api).")
	for _, cause := range withKeys(state.Causes(), s.Rollbacks) {
		e.sample("canaryd_rollbacks_total", float64(s.Rollbacks[cause]), "cause", string(cause))
	}
	e.one("canaryd_config_generation", "gauge", "Generation of the running config; it goes up with each applied reload.", float64(s.ConfigGeneration))
	e.one("canaryd_config_errors_total", "counter", "Config reloads rejected since canaryd started.", float64(s.ConfigErrors))
	e.one("canaryd_config_valid", "gauge", "1 when the config directory validates, 0 while the last good config serves after a rejected one.", bool01(s.ConfigValid))
	e.one("canaryd_client_connections", "gauge", "Client connections held now.", float64(s.ClientConns))
	e.one("canaryd_client_connections_max", "gauge", "proxy.max_connections: client connections held at most.", float64(s.ClientConnsMax))
	e.family("canaryd_client_connections_closed_total", "counter", "Client connections closed at proxy.max_connections: evicted (waiting for a request, closed for a new one) or refused (new, when every one was busy).")
	e.sample("canaryd_client_connections_closed_total", float64(s.ClientEvicted), "reason", "evicted")
	e.sample("canaryd_client_connections_closed_total", float64(s.ClientRefused), "reason", "refused")

	e.family("canaryd_upstream_responses_total", "counter", "Requests sent to an upstream, by status class (1xx to 5xx, or failed: refused, reset or timed out).")
	for _, u := range s.Upstreams {
		for class, n := range u.Responses {
			e.sample("canaryd_upstream_responses_total", float64(n), "upstream", u.Name, "role", u.Role, "class", route.Class(class).String())
		}
	}
	perUpstream := func(name, typ, help string, value func(UpstreamSnapshot) float64) {
		e.family(name, typ, help)
		for _, u := range s.Upstreams {
			e.sample(name, value(u), "upstream", u.Name, "role", u.Role)
		}
	}
	perUpstream("canaryd_upstream_errors_total", "counter", "Requests that count against an upstream in the canary analysis: 5xx responses and failures.",
		func(u UpstreamSnapshot) float64 { return float64(u.Errors) })
	perUpstream("canaryd_upstream_healthy", "gauge", "1 when the upstream takes requests, 0 while max_fails keeps it out.",
		func(u UpstreamSnapshot) float64 { return bool01(u.Healthy) })
	perUpstream("canaryd_upstream_in_flight", "gauge", "Requests at the upstream now.",
		func(u UpstreamSnapshot) float64 { return float64(u.InFlight) })
	perUpstream("canaryd_upstream_weight", "gauge", "The upstream's configured weight.",
		func(u UpstreamSnapshot) float64 { return float64(u.Weight) })

	const duration = "canaryd_upstream_request_duration_seconds"
	e.family(duration, "histogram", "Time from sending a request to an upstream until its response headers arrived.")
	for _, u := range s.Upstreams {
		if len(u.LatencyBuckets) != len(u.LatencyBounds) {
			// One broken series, said where a reader of the scrape sees
			// it; the rest of the scrape goes on.
			e.comment(fmt.Sprintf("upstream %q left out: %d latency buckets for %d bounds", u.Name, len(u.LatencyBuckets), len(u.LatencyBounds)))
			continue
		}
		e.histogram(duration, u.LatencyBounds, u.LatencyBuckets, u.LatencyCount, u.LatencySum, "upstream", u.Name, "role", u.Role)
	}
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
// Go runtime's and the process's, in the text format (see expo).
func Metrics(snapshot func() Snapshot) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e := expo{b: make([]byte, 0, 16<<10)}
		write(&e, snapshot())
		writeRuntime(&e)
		writeProcess(&e)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores") // as Prometheus's client has it
		w.Write(e.b)
	})
}
