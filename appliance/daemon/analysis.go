package daemon

import (
	"context"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// judgeEvery is how often the canary is judged: the light turns red well
// within a second of the verdict turning bad.
const judgeEvery = 250 * time.Millisecond

// analyze judges the canary until ctx ends.
func (d *Daemon) analyze(ctx context.Context) {
	t := time.NewTicker(judgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.judge(time.Now())
		}
	}
}

// roles sums the analysis windows of each role.
func roles(plan *route.Plan, now time.Time) (canary, stable analysis.Counts) {
	for _, u := range plan.Upstreams {
		w := u.Stats.Window.Load()
		if w == nil {
			continue
		}
		if u.Role == config.Canary {
			canary = canary.Add(w.Snapshot(now))
		} else {
			stable = stable.Add(w.Snapshot(now))
		}
	}
	return canary, stable
}

// judge takes the verdict on the canary's window, shows it on the light,
// logs a change, and rolls back when the verdict is bad and the config
// asks for it.
func (d *Daemon) judge(now time.Time) {
	// The windows are read under d.mu: a resume or a new version resets
	// them under it, and numbers read before that reset must not judge
	// the clean slate (they would roll a resumed canary straight back).
	d.mu.Lock()
	plan := d.router.Plan()
	canary, stable := roles(plan, now)
	policy := analysis.Policy{ErrorRate: d.cfg.Canary.ErrorRate, MinRequests: d.cfg.Canary.MinRequests,
		LatencyRatio: d.cfg.Canary.LatencyRatio}
	v := analysis.Judge(canary, stable, policy)
	if !plan.HasCanary {
		v = analysis.Verdict{}
	}
	prev := d.verdict
	d.verdict = v
	version := d.cfg.Canary.Version
	if prev.State != v.State && plan.HasCanary {
		d.showLights()
		switch v.State {
		case analysis.Bad:
			d.log.Warn("canary verdict: bad", "MESSAGE_ID", MsgCanaryBad, "CANARY_VERSION", version,
				"VERDICT", v.State.String(), "REASON", v.Reason)
		default:
			d.log.Info("canary verdict: "+v.State.String(), "CANARY_VERSION", version,
				"VERDICT", v.State.String(), "REASON", v.Reason)
		}
	}
	// Decided and done under one lock: a promotion or a new version in
	// between must not be rolled back on the old numbers.
	if decide.AutoRollback(d.cfg.Canary.AutoRollback, d.router.Plan().Mode, v) {
		d.act(decide.Rollback, state.CauseAuto, v.Reason)
	}
	d.progress(now, v)
	d.mu.Unlock()
}
