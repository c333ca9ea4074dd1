package decide

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// Schedule is a progressive rollout's configuration: canary.steps,
// step_interval, promote and min_requests.
type Schedule struct {
	Steps       []float64
	Interval    time.Duration
	AutoPromote bool
	MinRequests int
}

// ScheduleOf is cfg's schedule; ok is false without canary.steps.
func ScheduleOf(cfg *config.Config) (s Schedule, ok bool) {
	c := cfg.Canary
	return Schedule{Steps: c.Steps, Interval: c.StepInterval, AutoPromote: c.Promote == "auto",
		MinRequests: c.MinRequests}, len(c.Steps) > 0 && cfg.HasCanary()
}

// Start is the rollout of a canary version that begins at now: the first
// step.
func Start(version string, s Schedule, now time.Time) state.Rollout {
	return state.Rollout{Version: version, Percent: s.Steps[0], Entered: now}
}

// Restored is the rollout to run for version under s, from r as the state
// file (or the running daemon) had it, at now: the same version goes on
// where it was, a new one starts at the first step. When the steps were
// edited, it stays at the highest step whose share is not above the share
// it had, so that an edit never raises the canary's share by itself.
// changed reports whether the result differs from r, so it must be saved.
func Restored(r state.Rollout, version string, s Schedule, now time.Time) (next state.Rollout, changed bool) {
	if r.Version != version {
		return Start(version, s, now), true
	}
	if r.Step >= 0 && r.Step < len(s.Steps) && s.Steps[r.Step] == r.Percent {
		return r, false
	}
	next = r
	next.Step = 0
	for i, p := range s.Steps {
		if p <= r.Percent {
			next.Step = i
		}
	}
	next.Percent = s.Steps[next.Step]
	return next, true
}

// Observed is what the daemon saw of the canary, for Progress.
type Observed struct {
	Mode    state.Mode
	Verdict analysis.Verdict
	// Requests is how many requests the canary got since the step began
	// (since canaryd started, when that was later).
	Requests uint64
	// Recent is how many it got over the window: none, and its traffic
	// vanished, which is no evidence of anything.
	Recent uint64
	Window time.Duration
	// Safety is what the step needs before its silence is evidence that
	// the canary is safe.
	Safety analysis.Safety
}

// Move is what a rollout does at a tick.
type Move int

const (
	Stay    Move = iota // at its step
	Advance             // to the next step, entered now
	Finish              // the last step passed with promote = "auto": promote
)

// Position is a rollout's place on its schedule: what it does now, and
// what the status shows.
type Position struct {
	Move    Move
	Rollout state.Rollout // after the move
	// NextAt is when the next step is due, zero at the last step and while
	// holding.
	NextAt time.Time
	// Holding says why the rollout does not advance, in one line; "" while
	// it is on schedule.
	Holding string
}

// Progress decides, at now, whether rollout r moves on under schedule s:
// one step per interval, only on evidence of safety, since no traffic is
// not success: the canary had at least min_requests since the step began,
// and enough that the errors test would have found a canary failing at
// Safety.RuleOut; it had traffic in the last window; the evidence against
// it is below the square root of its threshold (a suspicion is no
// promotion); and the verdict is good. A bad verdict, a pause, a latch and
// the last step of a manual promotion hold it, and Holding says which.
func Progress(r state.Rollout, s Schedule, o Observed, now time.Time) Position {
	pos := Position{Rollout: r}
	last := r.Step >= len(s.Steps)-1
	due := r.Entered.Add(s.Interval)
	switch {
	case o.Mode == state.RolledBack:
		pos.Holding = "rolled back: canaryctl resume starts the canary again at the first step"
	case o.Mode == state.Promoted:
		pos.Holding = "promoted: the canary takes all traffic"
	case o.Mode != state.Canary:
		pos.Holding = "no canary upstream is configured"
	case r.Paused:
		pos.Holding = "paused: canaryctl resume lets it go on"
	case o.Verdict.State == analysis.Bad:
		pos.Holding = "the canary is failing: " + o.Verdict.Reason
	case last && !s.AutoPromote:
		pos.Holding = "at the last step: canaryctl promote sends all traffic to the canary"
	case now.Before(due):
		if !last {
			pos.NextAt = due
		}
	case o.Requests < uint64(s.MinRequests):
		pos.Holding = fmt.Sprintf("not enough traffic: the canary had %d requests at this step, need %d", o.Requests, s.MinRequests)
	case o.Requests < o.Safety.Needed:
		pos.Holding = fmt.Sprintf("not enough traffic: needs about %d more canary requests to rule out %s",
			o.Safety.Needed-o.Requests, o.Safety)
	case o.Recent == 0:
		pos.Holding = fmt.Sprintf("not enough traffic: the canary had no requests in the last %s", o.Window)
	case suspect(o.Verdict):
		g := o.Verdict.Strongest()
		pos.Holding = fmt.Sprintf("suspect: the evidence against the canary is %s (bad at %s); a step advances below %s",
			analysis.Times(g.Evidence), analysis.Times(g.Threshold), analysis.Times(math.Sqrt(g.Threshold)))
	case o.Verdict.State != analysis.Good:
		pos.Holding = fmt.Sprintf("waiting for a good verdict (%s): %s", o.Verdict.State, o.Verdict.Reason)
	case last:
		pos.Move = Finish
	default:
		pos.Move = Advance
		pos.Rollout.Step++
		pos.Rollout.Percent = s.Steps[pos.Rollout.Step]
		pos.Rollout.Entered = now
		if pos.Rollout.Step < len(s.Steps)-1 {
			pos.NextAt = now.Add(s.Interval)
		}
	}
	return pos
}

// suspect reports whether the evidence against the canary has gone half
// way to bad, on the scale it grows on (the square root of its threshold).
func suspect(v analysis.Verdict) bool {
	g := v.Strongest()
	return g.Threshold > 1 && g.Evidence >= math.Sqrt(g.Threshold)
}

// ErrNoRollout is the refusal of a pause without canary.steps.
var ErrNoRollout = errors.New("no progressive rollout is configured (canary.steps): nothing to pause")

// Pause holds rollout r at its step from now, in mode m. A pause while
// paused changes nothing; a latched canary has no schedule to hold.
func Pause(r state.Rollout, m state.Mode, now time.Time) (state.Rollout, error) {
	switch {
	case m == state.RolledBack:
		return r, fmt.Errorf("canary %s is rolled back: nothing to pause (resume starts it again at the first step)", r.Version)
	case m == state.Promoted:
		return r, fmt.Errorf("canary %s is promoted: the rollout is over", r.Version)
	case r.Paused:
		return r, nil
	}
	r.Paused, r.PausedAt = true, now
	return r, nil
}

// Unpause lets a paused rollout go on at now, with the time it was paused
// not counted against its step: a pause holds the schedule where it was.
func Unpause(r state.Rollout, now time.Time) state.Rollout {
	if !r.Paused {
		return r
	}
	if held := now.Sub(r.PausedAt); held > 0 {
		r.Entered = r.Entered.Add(held)
	}
	r.Paused, r.PausedAt = false, time.Time{}
	return r
}
