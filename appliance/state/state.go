// Package state is the rollback latch: the one decision an operator (or
// the button, or the analysis) makes about the canary that must outlive the
// process. Transitions are pure functions; Store is the only writer of the
// state file and writes it so that a crash or a power cut leaves either the
// old latch or the new one, never neither.
package state

import (
	"errors"
	"fmt"
	"time"
)

// Mode is what the traffic split does now. The values are the contract's
// `state` field.
type Mode string

const (
	NoCanary   Mode = "stable"      // no canary upstream configured
	Canary     Mode = "canary"      // the canary takes its configured share
	RolledBack Mode = "rolled_back" // every new request goes to stable upstreams
	Promoted   Mode = "promoted"    // every new request goes to canary upstreams
)

// Modes are all the modes, for a list of every value (the metrics' state
// label, the status page's).
func Modes() []Mode { return []Mode{NoCanary, Canary, RolledBack, Promoted} }

// Cause is who or what took a latch, as the state file, the status JSON,
// the incident reports and the rollbacks metric spell it.
type Cause string

const (
	CauseCommand Cause = "command" // canaryctl, on the admin socket
	CauseAPI     Cause = "api"     // the admin TCP listener: the status page, scripts
	CauseButton  Cause = "button"  // the front panel's button, or canaryctl button
	CauseAuto    Cause = "auto"    // the analysis, with canary.auto_rollback
	CauseFleet   Cause = "fleet"   // another member of the fleet ([fleet])
	// CauseUnreadable is the rollback Open latches when a state file (the
	// latch, the rollout, canary.json) cannot be read: the safe guess.
	CauseUnreadable Cause = "unreadable-state-file"
)

// Who says who the cause is, for people: "the button", "canaryctl".
func (c Cause) Who() string {
	switch c {
	case CauseCommand:
		return "canaryctl"
	case CauseAPI:
		return "the admin API"
	case CauseAuto:
		return "the analysis (auto_rollback)"
	case CauseButton:
		return "the button"
	case CauseFleet:
		return "the fleet"
	case CauseUnreadable:
		return "canaryd, as a state file was unreadable (kept aside as *.corrupt, see the journal)"
	}
	return string(c)
}

// Causes are the causes of an operator's or the analysis's action, for a
// list of every value (the rollbacks metric's cause label, the status
// page's). CauseUnreadable is not among them: no one takes it.
func Causes() []Cause { return []Cause{CauseCommand, CauseAPI, CauseButton, CauseAuto, CauseFleet} }

// Latch is the persisted decision. The zero value is "not latched".
type Latch struct {
	Mode    Mode      `json:"state"`   // RolledBack, Promoted, or "" for none
	Version string    `json:"version"` // the canary.version it was taken for
	Cause   Cause     `json:"cause"`
	At      time.Time `json:"at"`
}

// Latched reports whether a rollback or a promotion is in force.
func (l Latch) Latched() bool { return l.Mode == RolledBack || l.Mode == Promoted }

// ModeFor is the mode the latch gives a config with or without a canary.
func (l Latch) ModeFor(hasCanary bool) Mode {
	switch {
	case !hasCanary:
		return NoCanary
	case l.Latched():
		return l.Mode
	default:
		return Canary
	}
}

// ForVersion is the latch after a config with this canary version is
// applied: a new version re-arms the canary, the same one keeps the latch.
// A latch taken for an unknown version (see Open) holds for whichever
// version comes first.
func (l Latch) ForVersion(version string) Latch {
	if l.Latched() && l.Version == "" {
		l.Version = version
		return l
	}
	if l.Latched() && l.Version != version {
		return Latch{}
	}
	return l
}

// ErrNoCanary is the refusal for an action that needs a canary.
var ErrNoCanary = errors.New("no canary upstream is configured")

// Rollback latches a rollback of version. Rolling back a promoted canary is
// allowed: it is the way back from a promotion gone wrong.
func (l Latch) Rollback(hasCanary bool, version string, cause Cause, now time.Time) (Latch, error) {
	if !hasCanary {
		return l, ErrNoCanary
	}
	if l.Mode == RolledBack && (l.Cause != CauseFleet || cause == CauseFleet) {
		return l, nil
	}
	// Rolled back by the fleet, a rollback here makes it this member's
	// own as well: a resume elsewhere that did not see it leaves it.
	return Latch{Mode: RolledBack, Version: version, Cause: cause, At: now}, nil
}

// Promote latches a promotion of version. It is refused while rolled back,
// so that a promotion is always a deliberate step after a resume.
func (l Latch) Promote(hasCanary bool, version string, cause Cause, now time.Time) (Latch, error) {
	switch {
	case !hasCanary:
		return l, ErrNoCanary
	case l.Mode == RolledBack:
		return l, fmt.Errorf("canary %s is rolled back: resume first", l.Version)
	case l.Mode == Promoted:
		return l, nil
	}
	return Latch{Mode: Promoted, Version: version, Cause: cause, At: now}, nil
}

// Resume clears a rollback or a promotion.
func (l Latch) Resume(hasCanary bool) (Latch, error) {
	if !hasCanary {
		return l, ErrNoCanary
	}
	return Latch{}, nil
}
