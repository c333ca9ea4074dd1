package daemon

import (
	"fmt"
	"strings"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// rolloutPlan is plan at the step of the running rollout, or plan itself
// without canary.steps; d.mu is held. A same version goes on where it was
// (also across a restart), a new one starts at the first step.
func (d *Daemon) rolloutPlan(plan *route.Plan, now time.Time) *route.Plan {
	s, ok := decide.ScheduleOf(d.cfg)
	if !ok {
		return plan
	}
	next, changed := decide.Restored(d.rollout, d.cfg.Canary.Version, s, now)
	if changed {
		d.enterStep(next, plan)
	}
	return plan.AtStep(d.rollout.Percent)
}

// enterStep makes r the rollout, saved, counting the canary's requests at
// the step from now; d.mu is held. A failed save is logged: the rollout
// goes on, and a restart would find the step before, a smaller share.
func (d *Daemon) enterStep(r state.Rollout, plan *route.Plan) {
	d.rollout = r
	d.stepBase = canaryRequests(plan)
	if err := d.store.SaveRollout(r); err != nil {
		d.log.Error("cannot save the rollout", "error", err.Error())
	}
}

// restartRollout starts the canary again at the first step, now: a resume
// after a rollback or a promotion; d.mu is held.
func (d *Daemon) restartRollout(now time.Time) {
	s, ok := decide.ScheduleOf(d.cfg)
	if !ok {
		return
	}
	d.enterStep(decide.Start(d.cfg.Canary.Version, s, now), d.router.Plan())
	d.router.SetStep(d.rollout.Percent)
}

// canaryRequests is each canary upstream's request count, by name.
func canaryRequests(plan *route.Plan) map[string]uint64 {
	n := map[string]uint64{}
	for _, u := range plan.Upstreams {
		if u.Role == config.Canary {
			n[u.Name] = u.Stats.Requests()
		}
	}
	return n
}

// stepRequests is how many requests the canary of plan had since the step
// began; an upstream added since counts whole.
func (d *Daemon) stepRequests(plan *route.Plan) uint64 {
	var n uint64
	for _, u := range plan.Upstreams {
		if now, base := u.Stats.Requests(), d.stepBase[u.Name]; u.Role == config.Canary && now > base {
			n += now - base
		}
	}
	return n
}

// position is the rollout's place on its schedule at now under verdict v;
// ok is false without canary.steps. d.mu is held.
func (d *Daemon) position(now time.Time, v analysis.Verdict) (s decide.Schedule, pos decide.Position, ok bool) {
	if s, ok = decide.ScheduleOf(d.cfg); !ok {
		return s, pos, false
	}
	plan := d.router.Plan()
	canary, stable := roles(plan, now)
	o := decide.Observed{Mode: plan.Mode, Verdict: v, Requests: d.stepRequests(plan),
		Recent: canary.Requests, Window: d.cfg.Canary.Window}
	if !now.Before(d.rollout.Entered.Add(s.Interval)) {
		// Only a step that is due asks what its safety needs.
		traffic := d.evidence.Traffic
		o.Safety = analysis.SafetyFor(policyOf(d.cfg), d.rollout.Percent/100, traffic.StableEvents, traffic.Stable,
			float64(canary.Requests+stable.Requests)/d.cfg.Canary.Window.Seconds())
	}
	return s, decide.Progress(d.rollout, s, o, now), true
}

// progress moves the rollout on when its schedule says so; the judge calls
// it with d.mu held, after the verdict.
func (d *Daemon) progress(now time.Time, v analysis.Verdict) {
	s, pos, ok := d.position(now, v)
	if !ok {
		d.holding = ""
		return
	}
	switch pos.Move {
	case decide.Advance:
		d.enterStep(pos.Rollout, d.router.Plan())
		d.router.SetStep(pos.Rollout.Percent)
		d.log.Warn(fmt.Sprintf("rollout: step %d of %d, %s of new requests to the canary", pos.Rollout.Step+1, len(s.Steps),
			percent(pos.Rollout.Percent)), "MESSAGE_ID", MsgStep, "CANARY_VERSION", d.cfg.Canary.Version,
			"STEP", pos.Rollout.Step, "PERCENT", pos.Rollout.Percent)
		d.mark(now, history.Step, fmt.Sprintf("step %d of %d: %s to %s", pos.Rollout.Step+1, len(s.Steps),
			percent(pos.Rollout.Percent), d.cfg.Canary.Version))
	case decide.Finish:
		reason := fmt.Sprintf("the last step (%s) passed with a good verdict", percent(pos.Rollout.Percent))
		if err := d.act(decide.Promote, state.CauseAuto, reason); err != nil {
			d.log.Error("the rollout could not promote the canary", "error", err.Error())
		}
		return
	}
	// One journal entry when the rollout starts holding, or holds for
	// another reason; not one per tick while its numbers change.
	if kind := holdKind(pos.Holding); kind != holdKind(d.holding) && kind != "" {
		d.log.Info("rollout holding at "+percent(d.rollout.Percent)+": "+pos.Holding,
			"CANARY_VERSION", d.cfg.Canary.Version, "STEP", d.rollout.Step, "HOLDING", pos.Holding)
	}
	d.holding = pos.Holding
}

// holdKind is what a holding reason is about: the words before its colon.
func holdKind(holding string) string {
	kind, _, _ := strings.Cut(holding, ":")
	return kind
}

func percent(p float64) string { return fmt.Sprintf("%g%%", p) }

// pause holds the rollout at its step; d.mu is held.
func (d *Daemon) pause(now time.Time) error {
	if _, ok := decide.ScheduleOf(d.cfg); !ok {
		return decide.ErrNoRollout
	}
	next, err := decide.Pause(d.rollout, d.router.Plan().Mode, now)
	if err != nil || next == d.rollout {
		return err
	}
	if err := d.store.SaveRollout(next); err != nil {
		return fmt.Errorf("the pause could not be saved, nothing changed: %w", err)
	}
	d.rollout = next
	d.log.Warn("paused: the rollout holds at "+percent(next.Percent), "MESSAGE_ID", MsgPause,
		"CANARY_VERSION", d.cfg.Canary.Version, "STEP", next.Step)
	d.mark(now, history.Pause, "rollout of "+d.cfg.Canary.Version+" paused at "+percent(next.Percent))
	return nil
}

// resume clears a rollback or a promotion, as act does, and else releases
// a pause and starts afresh a bad verdict on a canary that still serves
// (auto_rollback off: the operator judged the failure gone); d.mu is held.
func (d *Daemon) resume(cause state.Cause, now time.Time) error {
	if !d.latch.Latched() && d.router.Plan().Mode == state.Canary && !d.evidence.BadAt.IsZero() {
		d.rejudge(cause, now)
		if !d.rollout.Paused {
			return nil
		}
	}
	if d.latch.Latched() || !d.rollout.Paused {
		return d.act(decide.Resume, cause, "")
	}
	next := decide.Unpause(d.rollout, now)
	if err := d.store.SaveRollout(next); err != nil {
		return fmt.Errorf("the resume could not be saved, nothing changed: %w", err)
	}
	d.rollout = next
	d.log.Warn("resumed: the rollout goes on at "+percent(next.Percent), "MESSAGE_ID", MsgResume,
		"CAUSE", cause, "CANARY_VERSION", d.cfg.Canary.Version, "STEP", next.Step)
	d.mark(now, history.Resume, "rollout of "+d.cfg.Canary.Version+" resumed at "+percent(next.Percent))
	return nil
}

// rejudge starts the evidence of a serving canary afresh from now; d.mu
// is held.
func (d *Daemon) rejudge(cause state.Cause, now time.Time) {
	d.restartEvidence(now)
	d.showLights()
	d.log.Warn("resumed: the canary's verdict starts afresh", "MESSAGE_ID", MsgResume, "CAUSE", cause,
		"CANARY_VERSION", d.cfg.Canary.Version)
	d.mark(now, history.Resume, "verdict on "+d.cfg.Canary.Version+" started afresh "+causeWords[cause])
}

// rolloutStatus is the status's rollout object, nil without canary.steps;
// d.mu is held.
func (d *Daemon) rolloutStatus(now time.Time) *admin.Rollout {
	s, pos, ok := d.position(now, d.verdict)
	if !ok {
		return nil
	}
	r := d.rollout
	st := &admin.Rollout{Steps: s.Steps, Step: r.Step, Percent: r.Percent,
		Entered: r.Entered.UTC().Format(time.RFC3339), Paused: r.Paused}
	if pos.Move == decide.Stay {
		st.Holding = pos.Holding
		if !pos.NextAt.IsZero() {
			at := pos.NextAt.UTC().Format(time.RFC3339)
			st.NextAt = &at
		}
	}
	return st
}
