package daemon

import (
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/web"
)

// metricsSnapshot is what /metrics exports, read at scrape time.
func (d *Daemon) metricsSnapshot() web.Snapshot {
	var s web.Snapshot
	d.release.FillMetrics(&s)
	cs := d.proxy.Conns()
	s.ClientConns, s.ClientConnsMax, s.ClientEvicted, s.ClientRefused = cs.Open, cs.Max, cs.Evicted, cs.Refused
	plan := d.router.Plan()
	s.State = plan.Mode
	now := time.Now()
	s.CanaryPercent = plan.CanaryPercent(now)
	s.Upstreams = web.UpstreamsOf(plan, now)
	return s
}

// mountWeb adds the status page and /metrics to an admin handler.
func (d *Daemon) mountWeb(h *admin.Handler) *admin.Handler {
	h.HandleOpen("GET /{$}", web.Page()) // it asks for the token itself
	h.Handle("GET /metrics", web.Metrics(d.metricsSnapshot))
	return h
}
