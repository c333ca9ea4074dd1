package daemon

import (
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/web"
)

// classNames label route.Stats.Classes for /metrics.
var classNames = [6]string{"failed", "1xx", "2xx", "3xx", "4xx", "5xx"}

// metricsSnapshot is what /metrics exports, read at scrape time.
func (d *Daemon) metricsSnapshot() web.Snapshot {
	d.mu.Lock()
	s := web.Snapshot{
		CanaryVersion:    d.cfg.Canary.Version,
		ConfigGeneration: d.gen,
		ConfigErrors:     d.cfgRejects,
		ConfigValid:      d.cfgErr == "",
		Rollbacks:        make(map[string]uint64, len(d.rollbacks)),
	}
	if d.router.Plan().HasCanary {
		s.Verdict = d.verdict.State.String()
	}
	for cause, n := range d.rollbacks {
		s.Rollbacks[string(cause)] = n
	}
	d.mu.Unlock()

	plan := d.router.Plan()
	mode := plan.Mode
	s.State = string(mode)
	s.CanaryPercent = plan.CanaryPercent()
	now := time.Now()
	for _, u := range plan.Upstreams {
		counts, sum, bounds := u.Stats.Latency.Snapshot()
		cum := analysis.Cumulative(counts)
		us := web.UpstreamSnapshot{
			Name: u.Name, Role: string(u.Role), Weight: u.Weight,
			Healthy: u.Weight > 0 && plan.Healthy(u, now), InFlight: u.Stats.InFlight.Load(),
			Responses:      make(map[string]uint64, len(classNames)),
			Errors:         u.Stats.Errors.Load(),
			LatencyBounds:  bounds,
			LatencyBuckets: cum[:len(bounds)],
			LatencyCount:   cum[len(cum)-1],
			LatencySum:     sum.Seconds(),
		}
		for i, name := range classNames {
			us.Responses[name] = u.Stats.Classes[i].Load()
		}
		s.Upstreams = append(s.Upstreams, us)
	}
	return s
}

// mountWeb adds the status page and /metrics to an admin handler.
func (d *Daemon) mountWeb(h *admin.Handler) *admin.Handler {
	h.Handle("GET /{$}", web.Page())
	h.Handle("GET /metrics", web.Metrics(d.metricsSnapshot))
	return h
}
