package state

import (
	"fmt"
	"time"
)

// RolloutFileName is the progressive rollout's file in the state directory.
const RolloutFileName = "rollout.json"

// Rollout is where a progressive rollout (canary.steps) stands: the step a
// canary version is at, since when, and whether an operator paused it. It
// outlives the process as the latch does, so a restart neither skips a
// step nor starts a healthy canary over.
type Rollout struct {
	Version  string    `json:"version"` // the canary.version it belongs to
	Step     int       `json:"step"`    // 0-based index into canary.steps
	Percent  float64   `json:"percent"` // the step's share, to find it again if the steps are edited
	Entered  time.Time `json:"entered"` // when the step began, moved on by a pause's length
	Paused   bool      `json:"paused"`
	PausedAt time.Time `json:"paused_at,omitzero"`
}

var rolloutFile = file[Rollout]{RolloutFileName, func(r Rollout) error {
	if r.Version == "" || r.Step < 0 || r.Percent < 0 || r.Percent > 100 {
		return fmt.Errorf("version %q, step %d, percent %g: not a rollout", r.Version, r.Step, r.Percent)
	}
	return nil
}}

// RolloutPath is the rollout's file.
func (s *Store) RolloutPath() string { return rolloutFile.path(s) }

// LoadRollout reads the rollout's file. A missing file is no rollout (the
// zero value, whose empty Version belongs to no canary): the canary starts
// at the first step, its smallest share. Open has kept aside a file that
// cannot be read, and latched a rollback for it.
func (s *Store) LoadRollout() Rollout {
	r, _ := rolloutFile.load(s)
	return r
}

// SaveRollout writes the rollout durably, as Save writes the latch.
func (s *Store) SaveRollout(r Rollout) error { return rolloutFile.save(s, r) }
