package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
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
			d.mu.Lock()
			ev := history.Evidence{Errors: d.verdict.Errors.Evidence}
			if d.cfg.Canary.LatencyRatio > 0 {
				ev.Latency = d.verdict.Latency.Evidence
			}
			d.mu.Unlock()
			d.hist.Record(now, canary, stable, ev)
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
	cw, sw := roles(plan, now)
	canary.P99, stable.P99 = cw.Quantile(0.99), sw.Quantile(0.99)
	return canary, stable
}

// mark records on the charts' time line what changed the canary's share:
// the share it shows is the plan's now, after the change.
func (d *Daemon) mark(now time.Time, kind history.Kind, text string) {
	d.hist.Mark(now, kind, d.router.Plan().CanaryPercent(now), text)
}

// actText is a mark's line for an action, such as "rollback of v2 by the
// button" or "rollback of v2, automatic: canary 42.7% errors ...".
func actText(op decide.Op, cause state.Cause, version, reason string) string {
	by, ok := causeWords[cause]
	if !ok {
		by = "by " + string(cause)
	}
	s := fmt.Sprintf("%s of %s %s", op, version, by)
	if reason != "" {
		s += ": " + reason
	}
	return s
}

var causeWords = map[state.Cause]string{
	state.CauseCommand: "by canaryctl",
	state.CauseAPI:     "by the admin API",
	state.CauseButton:  "by the button",
	state.CauseAuto:    "automatically",
}

// versionText is a mark's line for a reload that changed canary.version.
func versionText(from, to string) string {
	switch {
	case from == "":
		return "canary " + to + " configured"
	case to == "":
		return "canary " + from + " removed"
	}
	return "canary " + from + " replaced by " + to
}

// History is the last fifteen minutes of traffic and the rollout's marks,
// as the admin API shows them.
func (d *Daemon) History() history.Snapshot { return d.hist.Snapshot(time.Now()) }
