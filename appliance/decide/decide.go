// Package decide is the appliance's decisions, as pure functions of the
// state and an event: what a command, the button or the analysis does to
// the rollback latch and the traffic, what a new config does to the latch,
// and what the lights and the status say. The daemon carries out the steps
// a decision lists against the router, the state file and the panel;
// nothing here touches those, so tests drive it with a clock and no sockets.
package decide

import (
	"fmt"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// Op is an action on the canary.
type Op string

const (
	Rollback Op = "rollback" // every new request to the stable upstreams, latched
	Resume   Op = "resume"   // the canary takes its configured share again
	Promote  Op = "promote"  // every new request to the canary, latched
)

// Press is the action a button press asks for: a short press rolls back, a
// long one (3 s or more) resumes.
func Press(long bool) Op {
	if long {
		return Resume
	}
	return Rollback
}

// Step is one thing the daemon does to carry out a decision.
type Step int

const (
	// Publish: the router's plan in the decision's Mode.
	Publish Step = iota
	// Save: the decision's Latch to the state file. After a Publish, a
	// failed save leaves the traffic moved (the safe way) and is reported;
	// before one, it changes nothing.
	Save
	// ResetCanary: new, empty analysis windows and verdict for the canary,
	// so that the errors that caused a rollback do not cause the next one.
	ResetCanary
)

// Decision is the latch and mode after an event, and the steps that get
// there, in order. No steps: nothing changes.
type Decision struct {
	Latch state.Latch
	Mode  state.Mode
	Steps []Step
}

// Act decides op, asked by cause at now, on latch l for a config that has a
// canary of version or not. A rollback moves the traffic before the latch is
// written, so the disk's latency comes after the canary is out; a resume or
// a promotion, which send traffic toward the canary, write the latch first.
func Act(l state.Latch, hasCanary bool, version string, op Op, cause state.Cause, now time.Time) (Decision, error) {
	var next state.Latch
	var err error
	switch op {
	case Rollback:
		next, err = l.Rollback(hasCanary, version, cause, now)
	case Resume:
		next, err = l.Resume(hasCanary)
	case Promote:
		next, err = l.Promote(hasCanary, version, cause, now)
	default:
		err = fmt.Errorf("unknown action %q", op)
	}
	unchanged := Decision{Latch: l, Mode: l.ModeFor(hasCanary)}
	if err != nil || next == l {
		return unchanged, err
	}
	d := Decision{Latch: next, Mode: next.ModeFor(hasCanary)}
	switch {
	case op == Rollback:
		d.Steps = []Step{Publish, Save}
	case l.Latched() && !next.Latched():
		d.Steps = []Step{Save, ResetCanary, Publish}
	default:
		d.Steps = []Step{Save, Publish}
	}
	return d, nil
}

// Configured decides what applying cfg does to latch l, where the running
// config's canary version was prevVersion: a new canary.version re-arms the
// canary and is judged on its own requests; the same one keeps the latch.
// Without a canary the latch waits for one to come back. The new plan is
// published by the reload itself, so Publish is not among the steps.
func Configured(l state.Latch, cfg *config.Config, prevVersion string) Decision {
	next := l
	if cfg.HasCanary() {
		next = l.ForVersion(cfg.Canary.Version)
	}
	d := Decision{Latch: next, Mode: next.ModeFor(cfg.HasCanary())}
	if next != l {
		d.Steps = append(d.Steps, Save)
	}
	if cfg.Canary.Version != prevVersion {
		d.Steps = append(d.Steps, ResetCanary)
	}
	return d
}

// Rearmed reports whether d clears a latch that l held: the log says so.
func Rearmed(l state.Latch, d Decision) bool { return l.Latched() && !d.Latch.Latched() }

// AutoRollback reports whether verdict v rolls the canary back by itself:
// canary.auto_rollback is on, the canary is serving, and the verdict is bad.
func AutoRollback(enabled bool, m state.Mode, v analysis.Verdict) bool {
	return enabled && m == state.Canary && v.State == analysis.Bad
}

// Lights is what the panel shows for a mode, the config's state (cfgErr is
// the last rejected config's error, "" when the running one is the newest)
// and the canary's verdict; cutOff is a member of a fleet that cannot
// reach it. The latch, not the button, decides: a rollback blinks red
// until it is resumed, whatever the verdict does meanwhile. A rejected
// config blinks the status light; else a fleet out of reach winks it.
func Lights(m state.Mode, cfgErr string, v analysis.State, cutOff bool) (status, canary led.Pattern) {
	status = led.Green
	switch {
	case cfgErr != "":
		status = led.GreenBlink
	case cutOff:
		status = led.GreenWink
	}
	switch {
	case m == state.Canary && v == analysis.Bad:
		canary = led.Red
	case m == state.Canary:
		canary = led.Green
	case m == state.RolledBack:
		canary = led.RedBlink
	default:
		canary = led.Off
	}
	return status, canary
}

// Message is the status's one-line summary for people, "" when all is as
// configured. It does not repeat the verdict's reason, which the status
// shows beside it.
func Message(m state.Mode, l state.Latch, v analysis.Verdict) string {
	switch {
	case m == state.RolledBack:
		return fmt.Sprintf("rolled back by %s; resume to send traffic to %s again", l.Cause.Who(), l.Version)
	case m == state.Promoted:
		return fmt.Sprintf("promoted by %s: all traffic to %s", l.Cause.Who(), l.Version)
	case m == state.Canary && v.State == analysis.Bad:
		return "the canary is failing (the verdict says why): roll it back"
	case m == state.Canary && v.State == analysis.Shared:
		return "both versions are failing alike: not the canary's fault"
	}
	return ""
}

// By says who acted, for people: "by the button", "by canaryctl".
func By(cause state.Cause) string { return "by " + cause.Who() }
