package state

import (
	"errors"

	"github.com/canary-pi/canary-pi/appliance/analysis"
)

// EvidenceFileName is the verdict's evidence in the state directory.
const EvidenceFileName = "evidence.json"

var evidenceFile = file[analysis.Evidence]{EvidenceFileName, func(e analysis.Evidence) error {
	if !e.Valid() {
		return errors.New("not the evidence of a canary release")
	}
	return nil
}}

// EvidencePath is the evidence's file.
func (s *Store) EvidencePath() string { return evidenceFile.path(s) }

// LoadEvidence reads the verdict's evidence; ok is false when there is
// none, which starts the evidence afresh. Open has kept aside a file that
// cannot be read, and latched a rollback for it: a red verdict it held
// must not turn green by a power cut.
func (s *Store) LoadEvidence() (analysis.Evidence, bool) { return evidenceFile.load(s) }

// SaveEvidence writes the evidence durably, as Save writes the latch.
func (s *Store) SaveEvidence(e analysis.Evidence) error { return evidenceFile.save(s, e) }
