package state

import (
	"fmt"
	"time"
)

// LiveFileName is the file that says since when a canary version serves.
const LiveFileName = "canary.json"

// Live is when a canary version began to serve: first configured, or
// re-armed after a rollback. An incident report starts there.
type Live struct {
	Version string    `json:"version"`
	Since   time.Time `json:"since"`
}

var liveFile = file[Live]{LiveFileName, func(l Live) error {
	if l.Version == "" || l.Since.IsZero() {
		return fmt.Errorf("version %q since %v: not a canary's start", l.Version, l.Since)
	}
	return nil
}}

// LivePath is the Live file.
func (s *Store) LivePath() string { return liveFile.path(s) }

// LoadLive reads the Live file; a missing one is no Live, which the
// caller replaces by "since now": a report then starts later than it
// might, never earlier than what the journal holds. Open has kept aside a
// file that cannot be read, and latched a rollback for it.
func (s *Store) LoadLive() Live {
	l, _ := liveFile.load(s)
	return l
}

// SaveLive writes the Live file durably.
func (s *Store) SaveLive(l Live) error { return liveFile.save(s, l) }
