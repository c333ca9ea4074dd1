package daemon

import (
	"context"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/route"
)

// recordHistory samples the traffic and the evidence into d.hist every
// history.Interval until ctx ends. It reads the published plan's counters:
// off the request path.
func (d *Daemon) recordHistory(ctx context.Context) {
	t := time.NewTicker(history.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			canary, stable := totals(d.router.Plan(), now)
			d.hist.Record(now, canary, stable, d.release.Evidence())
		}
	}
}

// totals sums each role's cumulative counters over plan's upstreams, with
// the role's p99 over its analysis window.
func totals(plan *route.Plan, now time.Time) (canary, stable history.Totals) {
	for _, u := range plan.Upstreams {
		t := &stable
		if u.Role == config.Canary {
			t = &canary
		}
		t.Requests += u.Stats.Requests()
		t.Errors += u.Stats.Errors()
	}
	cw, sw := plan.Recent(now)
	canary.P99, stable.P99 = cw.Quantile(0.99), sw.Quantile(0.99)
	return canary, stable
}

// History is the last fifteen minutes of traffic and the rollout's marks,
// as the admin API shows them.
func (d *Daemon) History() history.Snapshot { return d.hist.Snapshot(time.Now()) }
