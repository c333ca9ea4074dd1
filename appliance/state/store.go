package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/appliance/atomicfile"
)

// FileName is the latch's file in the state directory.
const FileName = "latch.json"

// Store persists the latch in a state directory.
type Store struct {
	mu  sync.Mutex
	dir string
}

// Open prepares dir (creating it if needed), removes the temporary files
// an interrupted write left, and reads the latch in it. A missing latch
// file is no latch. A state file in dir that cannot be read or parsed (the
// latch, the rollout, canary.json, the evidence: a failing SD card) is kept aside with
// ".corrupt" added to its name, and the latch comes back as a rollback,
// saved: when we cannot know what the canary was doing, the safe answer is
// that it was rolled back. Aside lists the files kept aside, for the log.
func Open(dir string, now time.Time) (s *Store, l Latch, aside []Aside, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, Latch{}, nil, fmt.Errorf("state dir: %w", err)
	}
	if _, err := atomicfile.RemoveTemporary(dir); err != nil {
		return nil, Latch{}, nil, fmt.Errorf("state dir: %w", err)
	}
	s = &Store{dir: dir}
	for _, f := range []struct {
		name  string
		parse func([]byte) error
	}{
		{FileName, func(data []byte) (err error) { l, err = latchFile.parse(data); return err }},
		{RolloutFileName, rolloutFile.valid},
		{LiveFileName, liveFile.valid},
		{EvidenceFileName, evidenceFile.valid},
	} {
		a, err := s.check(f.name, f.parse)
		if err != nil {
			return nil, Latch{}, nil, err
		}
		if a != nil {
			aside = append(aside, *a)
		}
	}
	if aside != nil && l.Mode != RolledBack {
		l = Latch{Mode: RolledBack, Version: "", Cause: CauseUnreadable, At: now}
		if err := s.Save(l); err != nil {
			return nil, Latch{}, nil, err
		}
	}
	return s, l, aside, nil
}

// Aside is a state file Open could not read, kept aside.
type Aside struct {
	Path string // where it was
	Kept string // where it is now
	Err  error  // why it could not be read
}

func (a Aside) String() string {
	return fmt.Sprintf("state file %s is unreadable (kept as %s): %v", a.Path, a.Kept, a.Err)
}

// check reads the file name in the state dir with parse. A missing file
// is fine; one that cannot be read or parsed is renamed aside, and the
// Aside returned. An error means it could not be renamed either.
func (s *Store) check(name string, parse func([]byte) error) (*Aside, error) {
	path := filepath.Join(s.dir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		if err = parse(data); err == nil {
			return nil, nil
		}
	}
	a := &Aside{Path: path, Kept: path + ".corrupt", Err: err}
	if err := os.Rename(a.Path, a.Kept); err != nil {
		return nil, fmt.Errorf("state file %s is unreadable and cannot be moved aside: %w", path, err)
	}
	return a, nil
}

var latchFile = file[Latch]{FileName, func(l Latch) error {
	if !validMode(l.Mode) {
		return fmt.Errorf("state %q is none a latch can have", l.Mode)
	}
	return nil
}}

func validMode(m Mode) bool { return m == "" || m == RolledBack || m == Promoted }

// Path is the latch file.
func (s *Store) Path() string { return latchFile.path(s) }

// Save writes the latch durably: a temporary file is written and synced,
// renamed over the old one, and the directory is synced so that the rename
// itself survives a power cut.
func (s *Store) Save(l Latch) error { return latchFile.save(s, l) }

// write puts v, as JSON, in the file at path durably; what names it in
// an error.
func (s *Store) write(path, what string, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save %s: %w", what, err)
	}
	return nil
}
