package daemon

import (
	"maps"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/web"
)

// metricsSnapshot is what /metrics exports, read at scrape time.
func (d *Daemon) metricsSnapshot() web.Snapshot {
	d.mu.Lock()
	s := web.Snapshot{
		CanaryVersion:    d.cfg.Canary.Version,
		ConfigGeneration: d.gen,
		ConfigErrors:     d.cfgRejects,
		ConfigValid:      d.cfgErr == "",
		Rollbacks:        maps.Clone(d.rollbacks),
		Verdict:          d.verdict.State,
		HasVerdict:       d.router.Plan().HasCanary,
		Evidence:         map[string]analysis.Gauge{"errors": d.verdict.Errors},
	}
	if d.cfg.Canary.LatencyRatio > 0 {
		s.Evidence["latency"] = d.verdict.Latency
	}
	d.mu.Unlock()

	cs := d.proxy.Conns()
	s.ClientConns, s.ClientConnsMax, s.ClientEvicted, s.ClientRefused = cs.Open, cs.Max, cs.Evicted, cs.Refused
	plan := d.router.Plan()
	s.State = plan.Mode
	now := time.Now()
	s.CanaryPercent = plan.CanaryPercent(now)
	for _, u := range plan.Upstreams {
		counts, sum, bounds := u.Stats.Latency.Snapshot()
		cum := analysis.Cumulative(counts)
		us := web.UpstreamSnapshot{
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
		s.Upstreams = append(s.Upstreams, us)
	}
	return s
}

// mountWeb adds the status page and /metrics to an admin handler.
func (d *Daemon) mountWeb(h *admin.Handler) *admin.Handler {
	h.HandleOpen("GET /{$}", web.Page()) // it asks for the token itself
	h.Handle("GET /metrics", web.Metrics(d.metricsSnapshot))
	return h
}
