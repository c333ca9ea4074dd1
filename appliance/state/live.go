package state

import (
	"encoding/json"
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

// LoadLive reads the Live file; a missing or unreadable one is no Live,
// which the caller replaces by "since now": a report then starts later than
// it might, never earlier than what the journal holds.
func (s *Store) LoadLive() Live {
	var l Live
	data, err := os.ReadFile(s.LivePath())
	if err != nil || json.Unmarshal(data, &l) != nil {
		return Live{}
	}
	return l
}

// SaveLive writes the Live file durably.
func (s *Store) SaveLive(l Live) error { return s.write(s.LivePath(), "canary.json", l) }
