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

// Open prepares dir (creating it if needed) and reads the latch in it. A
// missing file is no latch. A file that cannot be parsed is kept aside as
// latch.json.corrupt and the latch comes back as a rollback: when we cannot
// know whether the canary was rolled back, the safe answer is that it was.
// The returned warning says what happened, for the log.
func Open(dir string, now time.Time) (s *Store, l Latch, warning string, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, Latch{}, "", fmt.Errorf("state dir: %w", err)
	}
	s = &Store{dir: dir}
	path := s.Path()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, Latch{}, "", nil
	case err != nil:
		return nil, Latch{}, "", fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(data, &l); err == nil && validMode(l.Mode) {
		return s, l, "", nil
	}
	aside := path + ".corrupt"
	if err := os.Rename(path, aside); err != nil {
		return nil, Latch{}, "", fmt.Errorf("state file %s is unreadable and cannot be moved aside: %w", path, err)
	}
	l = Latch{Mode: RolledBack, Version: "", Cause: CauseUnreadable, At: now}
	if err := s.Save(l); err != nil {
		return nil, Latch{}, "", err
	}
	return s, l, fmt.Sprintf("state file %s was unreadable (kept as %s): latched a rollback to be safe; `canaryctl resume` re-arms", path, aside), nil
}

func validMode(m Mode) bool { return m == "" || m == RolledBack || m == Promoted }

// Path is the latch file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// Save writes the latch durably: a temporary file is written and synced,
// renamed over the old one, and the directory is synced so that the rename
// itself survives a power cut.
func (s *Store) Save(l Latch) error { return s.write(s.Path(), "latch", l) }

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
