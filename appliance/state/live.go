package state

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// LivePath is the Live file.
func (s *Store) LivePath() string { return filepath.Join(s.dir, LiveFileName) }

// LoadLive reads the Live file; a missing one is no Live, which the
// caller replaces by "since now": a report then starts later than it
// might, never earlier than what the journal holds. Open has kept aside a
// file that cannot be read, and latched a rollback for it.
func (s *Store) LoadLive() Live {
	data, err := os.ReadFile(s.LivePath())
	if err != nil {
		return Live{}
	}
	l, err := parseLive(data)
	if err != nil {
		return Live{}
	}
	return l
}

// parseLive is the Live in data, the Live file's content.
func parseLive(data []byte) (Live, error) {
	var l Live
	if err := json.Unmarshal(data, &l); err != nil {
		return Live{}, err
	}
	if l.Version == "" || l.Since.IsZero() {
		return Live{}, fmt.Errorf("version %q since %v: not a canary's start", l.Version, l.Since)
	}
	return l, nil
}

// SaveLive writes the Live file durably.
func (s *Store) SaveLive(l Live) error { return s.write(s.LivePath(), "canary.json", l) }
