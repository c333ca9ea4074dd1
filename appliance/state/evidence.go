package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/canary-pi/canary-pi/appliance/analysis"
)

// EvidenceFileName is the verdict's evidence in the state directory.
const EvidenceFileName = "evidence.json"

// EvidencePath is the evidence's file.
func (s *Store) EvidencePath() string { return filepath.Join(s.dir, EvidenceFileName) }

// LoadEvidence reads the verdict's evidence; ok is false when there is
// none, which starts the evidence afresh. Open has kept aside a file that
// cannot be read, and latched a rollback for it: a red verdict it held
// must not turn green by a power cut.
func (s *Store) LoadEvidence() (e analysis.Evidence, ok bool) {
	data, err := os.ReadFile(s.EvidencePath())
	if err != nil {
		return analysis.Evidence{}, false
	}
	e, err = parseEvidence(data)
	return e, err == nil
}

// parseEvidence is the evidence in data, the evidence file's content.
func parseEvidence(data []byte) (analysis.Evidence, error) {
	var e analysis.Evidence
	if err := json.Unmarshal(data, &e); err != nil {
		return analysis.Evidence{}, err
	}
	if !e.Valid() {
		return analysis.Evidence{}, errors.New("not the evidence of a canary release")
	}
	return e, nil
}

// SaveEvidence writes the evidence durably, as Save writes the latch.
func (s *Store) SaveEvidence(e analysis.Evidence) error {
	return s.write(s.EvidencePath(), "evidence", e)
}
