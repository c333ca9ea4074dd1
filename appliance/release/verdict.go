package release

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// judgeEvery is how often the canary is judged: the tick the verdict's
// tallies are counted over, and the light turns red well within a second
// of the verdict turning bad.
const judgeEvery = 250 * time.Millisecond

// saveEvery is how often the evidence is written while it changes: a crash
// loses at most this much of it, and an SD card sees a small write every
// ten seconds of traffic, none while there is none.
const saveEvery = 10 * time.Second

// Run judges the canary every judgeEvery until ctx ends, and saves the
// evidence as it stops. Probes of a canary out of the rotation run in ctx.
func (c *Controller) Run(ctx context.Context) {
	c.probes.run(ctx)
	t := time.NewTicker(judgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			e := c.evidence
			c.mu.Unlock()
			c.saveEvidence(e)
			return
		case <-t.C:
			c.Tick(time.Now())
		}
	}
}

// recent is the roles' counts over the window, as the verdict reads them.
func recent(plan *route.Plan, now time.Time, span time.Duration) analysis.Recent {
	canary, stable := plan.Recent(now)
	return analysis.Recent{Canary: canary, Stable: stable, Span: span}
}

// counters are one upstream's cumulative counters as the verdict reads
// them.
type counters struct{ requests, errors, answers, slow uint64 }

// tallier turns the upstreams' cumulative counters into each tick's
// tallies: what grew since the tick before.
type tallier struct {
	last map[*route.Stats]counters
}

// tally reads plan's upstreams and returns, per role, the attempts and
// errors, and the answers and slow ones, since the last call. An upstream
// is known by its counters, which outlive reloads; one the plan no longer
// has is forgotten.
func (t *tallier) tally(plan *route.Plan) (errs, slow analysis.Tally) {
	next := make(map[*route.Stats]counters, len(plan.Upstreams))
	for _, u := range plan.Upstreams {
		s := u.Stats
		// Errors before requests, slow answers before answers: a request
		// finishing meanwhile can then only make a tick's events fewer
		// than its attempts, never more.
		errors, slowN := s.Errors(), s.Slow()
		requests := s.Requests()
		c := counters{requests: requests, errors: errors, answers: requests - min(errors, requests), slow: slowN}
		next[s] = c
		// Counters the tallier has not seen are new (a plan makes them
		// for a new upstream, all at zero when canaryd starts): what they
		// hold is this tick's.
		prev := t.last[s]
		d := analysis.Tally{Canary: c.requests - prev.requests, CanaryEvents: c.errors - prev.errors}
		ds := analysis.Tally{Canary: c.answers - prev.answers, CanaryEvents: c.slow - prev.slow}
		if u.Role != config.Canary {
			d = analysis.Tally{Stable: d.Canary, StableEvents: d.CanaryEvents}
			ds = analysis.Tally{Stable: ds.Canary, StableEvents: ds.CanaryEvents}
		}
		errs, slow = errs.Add(d), slow.Add(ds)
	}
	t.last = next
	return errs, slow
}

// setThresholds makes th what counts as slow on plan's upstreams. The
// canary's threshold never drops below the stable's, not even between two
// stores: a canary as fast as the stable must never count more slow
// answers for the order they were set in.
func setThresholds(plan *route.Plan, th analysis.Thresholds) {
	set := func(role config.Role, d time.Duration) {
		for _, u := range plan.Upstreams {
			if (u.Role == config.Canary) == (role == config.Canary) {
				u.Stats.SetSlowOver(d)
			}
		}
	}
	raising := true
	for _, u := range plan.Upstreams {
		if u.Role != config.Canary {
			raising = th.Stable >= u.Stats.SlowOver()
			break
		}
	}
	if raising {
		set(config.Canary, th.Canary)
		set(config.Stable, th.Stable)
	} else {
		set(config.Stable, th.Stable)
		set(config.Canary, th.Canary)
	}
}

// Tick feeds the tick ending at now to the evidence, takes the verdict,
// shows it on the light, logs a change, rolls back when the verdict is bad
// and the config asks for it, and moves the rollout on.
func (c *Controller) Tick(now time.Time) {
	// The tallies are read under the lock: a resume or a new version starts
	// the evidence afresh under it, and numbers read before must not judge
	// the clean slate.
	c.mu.Lock()
	plan := c.Router.Plan()
	errs, slow := c.tallies.tally(plan)
	probes := c.probes.take()
	policy := c.policy()
	rec := recent(plan, now, c.cfg.Canary.Window)
	tick := analysis.Tick{Traffic: errs, Probes: probes, Slow: slow}
	var others []analysis.Tick
	if c.Fleet != nil {
		others, c.poolMembers = c.Fleet.Exchange(c.cfg.Canary.Version, tick)
	}
	var v analysis.Verdict
	turnedBad := false
	if plan.HasCanary {
		if plan.Mode == state.Canary {
			turnedBad = c.evidence.Observe(now, tick, policy)
			if c.Fleet != nil && c.pooled.Observe(now, tick, policy, others...) {
				turnedBad = true
			}
			// A tick without an attempt changes only the prior's clock,
			// which a restart works out again: no write for it.
			if errs.Canary+errs.Stable+probes.Canary+probes.Stable > 0 {
				c.evidenceDirty = true
			}
		}
		v = c.judge(rec, c.verdict.State, policy)
	}
	c.thresholds = analysis.SlowThresholds(rec.Stable, policy)
	setThresholds(plan, c.thresholds)
	prev := c.verdict
	c.verdict, c.judgedAt = v, now
	if prev.State != v.State && plan.HasCanary {
		c.showLights()
		c.logVerdict(v)
	}
	if cutOff := c.Fleet != nil && !c.Fleet.Connected(); cutOff != c.cutOff {
		c.cutOff = cutOff
		c.showLights()
	}
	// Decided and done under one lock: a promotion or a new version in
	// between must not be rolled back on the old numbers.
	if decide.AutoRollback(c.cfg.Canary.AutoRollback, c.Router.Plan().Mode, v) {
		c.act(decide.Rollback, state.CauseAuto, v.Reason, now)
	}
	c.progress(now, v)
	if plan.Mode == state.Canary && c.evidence.BadAt.IsZero() {
		c.probes.round(plan, now, c.evidence.Traffic.Canary > 0)
	}
	var save *analysis.Evidence
	if c.evidenceDirty && (turnedBad || now.Sub(c.evidenceSaved) >= saveEvery) {
		e := c.evidence
		save, c.evidenceDirty, c.evidenceSaved = &e, false, now
	}
	c.mu.Unlock()
	if save != nil {
		c.saveEvidence(*save)
	}
}

// judge is the verdict on this member's evidence, or, in a fleet, on the
// pooled evidence when that is bad and this member's own is not.
func (c *Controller) judge(rec analysis.Recent, prev analysis.State, policy analysis.Policy) analysis.Verdict {
	v := analysis.Judge(&c.evidence, rec, c.thresholds, prev, policy)
	if c.Fleet == nil || v.State == analysis.Bad || c.pooled.BadAt.IsZero() {
		return v
	}
	pv := analysis.Judge(&c.pooled, rec, c.thresholds, prev, policy)
	pv.Reason = fmt.Sprintf("on the fleet's counts (%d members): %s", c.poolMembers, pv.Reason)
	return pv
}

// logVerdict writes a journal entry for a verdict that changed.
func (c *Controller) logVerdict(v analysis.Verdict) {
	g := v.Strongest()
	attrs := []any{"CANARY_VERSION", c.cfg.Canary.Version, "VERDICT", v.State.String(), "REASON", v.Reason,
		"EVIDENCE", evidenceField(g.Evidence), "THRESHOLD", evidenceField(g.Threshold)}
	if v.State == analysis.Bad {
		c.Log.Warn("canary verdict: bad", append(attrs, "MESSAGE_ID", MsgCanaryBad, "TEST", c.evidence.BadTest)...)
		return
	}
	c.Log.Info("canary verdict: "+v.State.String(), attrs...)
}

// saveEvidence writes e to the store. Only Run's loop calls it, so the
// writes come in order.
func (c *Controller) saveEvidence(e analysis.Evidence) {
	if e.Version == "" {
		return
	}
	if err := c.Store.SaveEvidence(e); err != nil {
		c.Log.Error("cannot save the verdict's evidence: a restart would lose what it gathered since the last save", "error", err.Error())
	}
}

// startEvidence starts the evidence of the release that serves since
// c.live, afresh.
func (c *Controller) startEvidence() { c.restartEvidence(c.live.Since) }

// restartEvidence starts the evidence of the serving release afresh from
// since: a new release, a resume of a bad canary, a new tolerance.
func (c *Controller) restartEvidence(since time.Time) {
	c.evidence = analysis.NewEvidence(c.live.Version, since, c.policy())
	c.pooled = c.evidence
	c.evidenceDirty = true
	c.judgeNow()
}

// judgeNow takes the verdict on the evidence as it stands, before the next
// tick: the status and the lights show it at once.
func (c *Controller) judgeNow() {
	c.verdict = analysis.Verdict{}
	if c.cfg.HasCanary() {
		c.verdict = c.judge(analysis.Recent{}, analysis.NotEnough, c.policy())
	}
}

// restoreEvidence takes up the evidence the store kept for the release
// serving since c.live (begun then, or later by a resume of a bad
// verdict), or starts it afresh.
func (c *Controller) restoreEvidence() {
	if e, ok := c.Store.LoadEvidence(); ok && e.Version == c.live.Version && !e.Since.Before(c.live.Since) {
		c.evidence = e
		c.pooled = analysis.NewEvidence(e.Version, e.Since, c.policy())
		return
	}
	c.startEvidence()
}

// evidenceField is a likelihood ratio as a journal field: "180", "0.42".
func evidenceField(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// verdictStatus is the status's verdict: v with the evidence behind it.
func verdictStatus(v analysis.Verdict, e analysis.Evidence, cfg *config.Config, th analysis.Thresholds, judged time.Time) *admin.Verdict {
	g := v.Strongest()
	st := &admin.Verdict{State: v.State, Reason: v.Reason, Evidence: g.Evidence, Threshold: g.Threshold,
		Errors:     testStatus(v.Errors, &e.Errors),
		FalseAlarm: cfg.Canary.FalseAlarm, Since: rfc3339(e.Since), BadAt: rfc3339(e.BadAt),
		AutoRollback: cfg.Canary.AutoRollback, Window: cfg.Canary.Window.String()}
	if !judged.IsZero() {
		st.JudgedAt = judged.UTC().Format(time.RFC3339Nano)
	}
	if cfg.Canary.LatencyRatio > 0 {
		st.Latency = testStatus(v.Latency, &e.Latency)
		if th.Stable != analysis.Never {
			st.Latency.SlowOverMs = &admin.SlowOver{Stable: millis(th.Stable), Canary: millis(th.Canary)}
		}
	}
	return st
}

// testStatus is one test's part of the status.
func testStatus(g analysis.Gauge, t *analysis.Test) *admin.Test {
	r := t.Strongest()
	return &admin.Test{Evidence: g.Evidence, Threshold: g.Threshold, CanaryEvents: r.CanaryEvents,
		Events: r.Events(), Expected: round1(r.Expected), Share: round4(r.Share())}
}

// rfc3339 is t for the status, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
