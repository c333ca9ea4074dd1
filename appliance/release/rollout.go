package release

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
// without canary.steps; A same version goes on where it was
// (also across a restart), a new one starts at the first step.
func (c *Controller) rolloutPlan(plan *route.Plan, now time.Time) *route.Plan {
	s, ok := decide.ScheduleOf(c.cfg)
	if !ok {
		return plan
	}
	next, changed := decide.Restored(c.rollout, c.cfg.Canary.Version, s, now)
	if changed {
		c.enterStep(next, plan)
	}
	return plan.AtStep(c.rollout.Percent)
}

// enterStep makes r the rollout, saved, counting the canary's requests at
// the step from now; A failed save is logged: the rollout
// goes on, and a restart would find the step before, a smaller share.
func (c *Controller) enterStep(r state.Rollout, plan *route.Plan) {
	c.rollout = r
	c.stepBase = canaryRequests(plan)
	if err := c.Store.SaveRollout(r); err != nil {
		c.Log.Error("cannot save the rollout", "error", err.Error())
	}
}

// restartRollout starts the canary again at the first step, now: a resume
// after a rollback or a promotion;
func (c *Controller) restartRollout(now time.Time) {
	s, ok := decide.ScheduleOf(c.cfg)
	if !ok {
		return
	}
	c.enterStep(decide.Start(c.cfg.Canary.Version, s, now), c.Router.Plan())
	c.Router.SetStep(c.rollout.Percent)
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
func (c *Controller) stepRequests(plan *route.Plan) uint64 {
	var n uint64
	for _, u := range plan.Upstreams {
		if now, base := u.Stats.Requests(), c.stepBase[u.Name]; u.Role == config.Canary && now > base {
			n += now - base
		}
	}
	return n
}

// position is the rollout's place on its schedule at now under verdict v;
// ok is false without canary.steps.
func (c *Controller) position(now time.Time, v analysis.Verdict) (s decide.Schedule, pos decide.Position, ok bool) {
	if s, ok = decide.ScheduleOf(c.cfg); !ok {
		return s, pos, false
	}
	plan := c.Router.Plan()
	canary, stable := plan.Recent(now)
	o := decide.Observed{Mode: plan.Mode, Verdict: v, Requests: c.stepRequests(plan),
		Recent: canary.Requests, Window: c.cfg.Canary.Window}
	if !now.Before(c.rollout.Entered.Add(s.Interval)) {
		// Only a step that is due asks what its safety needs.
		traffic := c.evidence.Traffic
		o.Safety = analysis.SafetyFor(c.policy(), c.rollout.Percent/100, traffic.StableEvents, traffic.Stable,
			float64(canary.Requests+stable.Requests)/c.cfg.Canary.Window.Seconds())
	}
	return s, decide.Progress(c.rollout, s, o, now), true
}

// progress moves the rollout on when its schedule says so; the judge calls
// it after the verdict.
func (c *Controller) progress(now time.Time, v analysis.Verdict) {
	s, pos, ok := c.position(now, v)
	if !ok {
		c.holding = ""
		return
	}
	switch pos.Move {
	case decide.Advance:
		c.enterStep(pos.Rollout, c.Router.Plan())
		c.Router.SetStep(pos.Rollout.Percent)
		c.Log.Warn(fmt.Sprintf("rollout: step %d of %d, %s of new requests to the canary", pos.Rollout.Step+1, len(s.Steps),
			percent(pos.Rollout.Percent)), "MESSAGE_ID", MsgStep, "CANARY_VERSION", c.cfg.Canary.Version,
			"STEP", pos.Rollout.Step+1, "STEPS", len(s.Steps), "PERCENT", pos.Rollout.Percent)
		c.mark(now, history.Step, fmt.Sprintf("step %d of %d: %s to %s", pos.Rollout.Step+1, len(s.Steps),
			percent(pos.Rollout.Percent), c.cfg.Canary.Version))
	case decide.Finish:
		reason := fmt.Sprintf("the last step (%s) passed with a good verdict", percent(pos.Rollout.Percent))
		if err := c.act(decide.Promote, state.CauseAuto, reason, now); err != nil {
			c.Log.Error("the rollout could not promote the canary", "error", err.Error())
		}
		return
	}
	// One journal entry when the rollout starts holding, or holds for
	// another reason; not one per tick while its numbers change.
	if kind := holdKind(pos.Holding); kind != holdKind(c.holding) && kind != "" {
		c.Log.Info("rollout holding at "+percent(c.rollout.Percent)+": "+pos.Holding,
			"CANARY_VERSION", c.cfg.Canary.Version, "STEP", c.rollout.Step+1, "HOLDING", pos.Holding)
	}
	c.holding = pos.Holding
}

// holdKind is what a holding reason is about: the words before its colon.
func holdKind(holding string) string {
	kind, _, _ := strings.Cut(holding, ":")
	return kind
}

func percent(p float64) string { return fmt.Sprintf("%g%%", p) }

// rolloutStatus is the status's rollout object, nil without canary.steps;
func (c *Controller) rolloutStatus(now time.Time) *admin.Rollout {
	s, pos, ok := c.position(now, c.verdict)
	if !ok {
		return nil
	}
	r := c.rollout
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
