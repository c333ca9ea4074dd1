package release

import (
	"fmt"
	"time"

	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// Rollback sends every new request to stable upstreams, latched, at cause's
// request.
func (c *Controller) Rollback(cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.act(decide.Rollback, cause, "", time.Now())
}

// Promote sends every new request to the canary, latched.
func (c *Controller) Promote(cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.act(decide.Promote, cause, "", time.Now())
}

// Resume clears a rollback or a promotion; else it releases a pause, and
// starts afresh the bad verdict of a canary that still serves (with
// auto_rollback off: the operator judged the failure gone).
func (c *Controller) Resume(cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.latch.Latched() && c.Router.Plan().Mode == state.Canary && !c.evidence.BadAt.IsZero() {
		c.rejudge(cause, now)
		if !c.rollout.Paused {
			return nil
		}
	}
	if c.latch.Latched() || !c.rollout.Paused {
		return c.act(decide.Resume, cause, "", now)
	}
	return c.unpause(cause, now)
}

// Press acts on a press of the button: a short one rolls back, a long one
// resumes.
func (c *Controller) Press(long bool) error {
	if decide.Press(long) == decide.Resume {
		return c.Resume(state.CauseButton)
	}
	return c.Rollback(state.CauseButton)
}

// Latch is the latch as it stands.
func (c *Controller) Latch() state.Latch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latch
}

// HasCanary reports whether the running config has a canary: a press of
// the button can act on nothing else.
func (c *Controller) HasCanary() bool { return c.Router.Plan().HasCanary }

// act carries out the decision on op at now; reason is an automatic
// rollback's, for the journal.
func (c *Controller) act(op decide.Op, cause state.Cause, reason string, now time.Time) error {
	dec, err := decide.Act(c.latch, c.Router.Plan().HasCanary, c.cfg.Canary.Version, op, cause, now)
	if err != nil || dec.Steps == nil {
		return err
	}
	var saveErr error
	published := false
	for _, step := range dec.Steps {
		switch step {
		case decide.Publish:
			c.Router.SetMode(dec.Mode)
			published = true
		case decide.Save:
			if saveErr = c.Store.Save(dec.Latch); saveErr != nil && !published {
				return fmt.Errorf("the latch could not be saved, nothing changed: %w", saveErr)
			}
		case decide.ResetCanary:
			c.resetCanary(c.Router.Plan(), now)
			c.restartRollout(now)
		}
	}
	if op == decide.Rollback && c.latch.Mode != state.RolledBack {
		// One report a rollback: not another when a rollback the fleet
		// made here becomes this member's own.
		c.reportIncident(cause, reason, now)
	}
	c.latch = dec.Latch
	c.showLights()
	c.mark(now, opKinds[op], actText(op, cause, c.cfg.Canary.Version, reason))
	attrs := []any{"MESSAGE_ID", opMessageIDs[op], "CAUSE", cause, "CANARY_VERSION", c.cfg.Canary.Version}
	if reason != "" {
		attrs = append(attrs, "REASON", reason)
	}
	if cause == state.CauseAuto && op == decide.Rollback {
		g := c.verdict.Strongest()
		attrs = append(attrs, "TEST", c.evidence.BadTest, "EVIDENCE", evidenceField(g.Evidence),
			"THRESHOLD", evidenceField(g.Threshold), "FALSE_ALARM", evidenceField(c.cfg.Canary.FalseAlarm))
	}
	c.Log.Warn(opMessages[op], attrs...)
	if op == decide.Rollback {
		c.rollbacks[cause]++
	}
	if saveErr != nil {
		c.Log.Error(string(op)+": the traffic moved, but the latch could not be saved", "error", saveErr.Error())
		return fmt.Errorf("%s: the traffic moved, but the latch could not be saved: %w", op, saveErr)
	}
	return nil
}

// The journal's words for each action.
var (
	opMessages = map[decide.Op]string{
		decide.Rollback: "rolled back: all new requests go to stable upstreams",
		decide.Resume:   "resumed: the canary takes its configured share",
		decide.Promote:  "promoted: all new requests go to the canary",
	}
	opMessageIDs = map[decide.Op]string{decide.Rollback: MsgRollback, decide.Resume: MsgResume, decide.Promote: MsgPromote}
	opKinds      = map[decide.Op]history.Kind{decide.Rollback: history.Rollback, decide.Resume: history.Resume, decide.Promote: history.Promote}
)

// Pause holds a progressive rollout at its step.
func (c *Controller) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if _, ok := decide.ScheduleOf(c.cfg); !ok {
		return decide.ErrNoRollout
	}
	next, err := decide.Pause(c.rollout, c.Router.Plan().Mode, now)
	if err != nil || next == c.rollout {
		return err
	}
	if err := c.Store.SaveRollout(next); err != nil {
		return fmt.Errorf("the pause could not be saved, nothing changed: %w", err)
	}
	c.rollout = next
	c.Log.Warn("paused: the rollout holds at "+percent(next.Percent), "MESSAGE_ID", MsgPause,
		"CANARY_VERSION", c.cfg.Canary.Version, "STEP", next.Step+1)
	c.mark(now, history.Pause, "rollout of "+c.cfg.Canary.Version+" paused at "+percent(next.Percent))
	return nil
}

// unpause releases a pause at now.
func (c *Controller) unpause(cause state.Cause, now time.Time) error {
	next := decide.Unpause(c.rollout, now)
	if err := c.Store.SaveRollout(next); err != nil {
		return fmt.Errorf("the resume could not be saved, nothing changed: %w", err)
	}
	c.rollout = next
	c.Log.Warn("resumed: the rollout goes on at "+percent(next.Percent), "MESSAGE_ID", MsgResume,
		"CAUSE", cause, "CANARY_VERSION", c.cfg.Canary.Version, "STEP", next.Step+1)
	c.mark(now, history.Resume, "rollout of "+c.cfg.Canary.Version+" resumed at "+percent(next.Percent))
	return nil
}

// rejudge starts the evidence of a serving canary afresh from now.
func (c *Controller) rejudge(cause state.Cause, now time.Time) {
	c.restartEvidence(now)
	c.showLights()
	c.Log.Warn("resumed: the canary's verdict starts afresh", "MESSAGE_ID", MsgResume, "CAUSE", cause,
		"CANARY_VERSION", c.cfg.Canary.Version)
	c.mark(now, history.Resume, "verdict on "+c.cfg.Canary.Version+" started afresh "+decide.By(cause))
}
