package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// RolloutPath is the rollout's file.
func (s *Store) RolloutPath() string { return filepath.Join(s.dir, RolloutFileName) }

// LoadRollout reads the rollout's file. A missing file is no rollout (the
// zero value, whose empty Version belongs to no canary). A file that cannot
// be parsed is kept aside as rollout.json.corrupt and no rollout comes back:
// the canary starts again at the first step, its smallest share, which is
// the safe guess. The warning says so, for the log.
func (s *Store) LoadRollout() (r Rollout, warning string, err error) {
	path := s.RolloutPath()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Rollout{}, "", nil
	case err != nil:
		return Rollout{}, "", fmt.Errorf("rollout file: %w", err)
	}
	if err := json.Unmarshal(data, &r); err == nil && r.Step >= 0 && r.Percent >= 0 && r.Percent <= 100 {
		return r, "", nil
	}
	aside := path + ".corrupt"
	if err := os.Rename(path, aside); err != nil {
		return Rollout{}, "", fmt.Errorf("rollout file %s is unreadable and cannot be moved aside: %w", path, err)
	}
	return Rollout{}, fmt.Sprintf("rollout file %s was unreadable (kept as %s): the canary starts again at the first step", path, aside), nil
}

// SaveRollout writes the rollout durably, as Save writes the latch.
func (s *Store) SaveRollout(r Rollout) error { return s.write(s.RolloutPath(), "rollout", r) }
