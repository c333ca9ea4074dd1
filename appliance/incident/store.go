package incident

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/appliance/atomicfile"
)

// DirName is the reports' folder in the state directory.
const DirName = "incidents"

var (
	// ErrNotFound is wrapped by Get's error for an id with no report.
	ErrNotFound = errors.New("no such incident")
	// ErrInvalidID is wrapped by Get's error for an id that cannot name a
	// report, such as one with a path separator.
	ErrInvalidID = errors.New("invalid incident id")
	// ErrUnreadable is wrapped by List's error for report files that do
	// not parse; the other reports are listed all the same.
	ErrUnreadable = errors.New("unreadable incident report")
)

// Summary is a report as the list shows it: its header, and how many
// requests and users it lists.
type Summary struct {
	Header
	Requests int    `json:"requests"` // non-idempotent ones
	Users    int    `json:"users"`
	Path     string `json:"path"`
}

// Store keeps the reports, one JSON file each, named by id. It is the
// only writer of its directory.
type Store struct {
	mu  sync.Mutex
	dir string
	// cache holds the summaries of files already read, by name: a list is
	// asked for every few seconds, and a report can be megabytes.
	cache map[string]cached
}

type cached struct {
	size int64
	mod  time.Time
	sum  Summary
}

// Open prepares the incidents folder in the state directory stateDir,
// creating it if needed, and removes the temporary files a write
// interrupted by a crash or a power cut left there.
func Open(stateDir string) (*Store, error) {
	dir := filepath.Join(stateDir, DirName)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("incident reports: %w", err)
	}
	if _, err := atomicfile.RemoveTemporary(dir); err != nil {
		return nil, fmt.Errorf("incident reports: %w", err)
	}
	return &Store{dir: dir, cache: map[string]cached{}}, nil
}

// Dir is the folder the reports are in.
func (s *Store) Dir() string { return s.dir }

// Write stores r durably under its id, or under the id with "-2", "-3",
// ... when a report has that id already, and returns the file's path.
// Then it removes the oldest reports while there are more than keep or
// they take more than maxBytes together (0 for either: no limit), never
// the one just written.
// An error with a path means the report is written but pruning failed.
func (s *Store) Write(r Report, keep int, maxBytes int64) (string, error) {
	if !validID(r.ID) {
		return "", fmt.Errorf("%w: %q (make reports with Build)", ErrInvalidID, r.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	base := r.ID
	for n := 2; ; n++ {
		if _, err := os.Lstat(s.file(r.ID)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		r.ID = fmt.Sprintf("%s-%d", base, n)
	}
	data, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return "", fmt.Errorf("incident %s: %w", r.ID, err)
	}
	path := s.file(r.ID)
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("incident %s: %w", r.ID, err)
	}
	return path, s.prune(r.ID, keep, maxBytes)
}

func (s *Store) file(id string) string { return filepath.Join(s.dir, id+".json") }

// report is a report file: its id and size.
type report struct {
	id   string
	size int64
	info fs.FileInfo
}

// reports returns the report files, oldest first. Ids start with the
// rollback's time, so their order is the reports' order.
func (s *Store) reports() ([]report, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("incident reports: %w", err)
	}
	var rs []report
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		rs = append(rs, report{id: id, size: info.Size(), info: info})
	}
	slices.SortFunc(rs, func(a, b report) int { return strings.Compare(a.id, b.id) })
	return rs, nil
}

func (s *Store) prune(newest string, keep int, maxBytes int64) error {
	rs, err := s.reports()
	if err != nil {
		return err
	}
	var total int64
	for _, r := range rs {
		total += r.size
	}
	var errs []error
	for len(rs) > 1 && (keep > 0 && len(rs) > keep || maxBytes > 0 && total > maxBytes) {
		old := rs[0]
		if old.id == newest {
			old = rs[1]
		}
		if err := os.Remove(s.file(old.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune incident reports: %w", err))
			break
		}
		delete(s.cache, old.id)
		total -= old.size
		rs = slices.DeleteFunc(rs, func(r report) bool { return r.id == old.id })
	}
	if err := s.pruneAside(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// keptAside is how many unreadable reports are kept, as evidence of a
// failing SD card (the journal named each when it was set aside); older
// ones go, so that a card that tears report after report does not fill up.
const keptAside = 10

// pruneAside removes all but the newest keptAside reports set aside.
func (s *Store) pruneAside() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("prune incident reports: %w", err)
	}
	var aside []string // ReadDir sorts by name: by time, oldest first
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json"+asideSuffix) && e.Type().IsRegular() {
			aside = append(aside, e.Name())
		}
	}
	var errs []error
	for _, name := range aside[:max(len(aside)-keptAside, 0)] {
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune incident reports: %w", err))
		}
	}
	return errors.Join(errs...)
}

// List returns the summaries of the reports, newest first. A file that
// cannot be read or does not parse (a failing SD card) is kept aside, with
// ".corrupt" added to its name, where no list finds it again; the error,
// wrapping ErrUnreadable, names it, and the summaries returned with that
// error are good.
func (s *Store) List() ([]Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, err := s.reports()
	if err != nil {
		return nil, err
	}
	sums := make([]Summary, 0, len(rs))
	var errs []error
	live := map[string]bool{}
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		live[r.id] = true
		if c, ok := s.cache[r.id]; ok && c.size == r.size && c.mod.Equal(r.info.ModTime()) {
			sums = append(sums, c.sum)
			continue
		}
		sum, err := s.summary(r.id)
		if err != nil {
			errs = append(errs, s.setAside(r.id, err))
			continue
		}
		s.cache[r.id] = cached{size: r.size, mod: r.info.ModTime(), sum: sum}
		sums = append(sums, sum)
	}
	for id := range s.cache {
		if !live[id] {
			delete(s.cache, id)
		}
	}
	return sums, errors.Join(errs...)
}

// asideSuffix is added to the name of a report that cannot be read.
const asideSuffix = ".corrupt"

// setAside renames the report id, which could not be read for err, out of
// the list, and returns the error to report.
func (s *Store) setAside(id string, err error) error {
	path := s.file(id)
	kept := path + asideSuffix
	if rerr := os.Rename(path, kept); rerr != nil {
		return fmt.Errorf("%w, and it cannot be moved aside: %v", err, rerr)
	}
	return fmt.Errorf("%w (kept as %s)", err, kept)
}

func (s *Store) summary(id string) (Summary, error) {
	path := s.file(id)
	data, err := os.ReadFile(path)
	if err != nil {
		return Summary{}, fmt.Errorf("%w %s: %v", ErrUnreadable, path, err)
	}
	// The header, and of the rest only what a summary counts.
	var h struct {
		Header
		Users    struct{ Count int } `json:"users"`
		Requests []json.RawMessage   `json:"requests"`
	}
	if err := json.Unmarshal(data, &h); err != nil || h.ID != id {
		if err == nil {
			err = fmt.Errorf("it names itself %q", h.ID)
		}
		return Summary{}, fmt.Errorf("%w %s: %v", ErrUnreadable, path, err)
	}
	return Summary{Header: h.Header, Requests: len(h.Requests), Users: h.Users.Count, Path: path}, nil
}

// Get returns the report with this id. An unknown id is an error wrapping
// ErrNotFound; one that cannot be a report's (a path separator, a leading
// dot) wraps ErrInvalidID.
func (s *Store) Get(id string) (Report, error) {
	if !validID(id) {
		return Report{}, fmt.Errorf("%w: %q (ids are as `canaryctl incidents` lists them)", ErrInvalidID, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.file(id)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Report{}, fmt.Errorf("%w: %q (`canaryctl incidents` lists them)", ErrNotFound, id)
	}
	if err != nil {
		return Report{}, fmt.Errorf("incident %s: %w", id, err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Report{}, fmt.Errorf("%w %s: %v", ErrUnreadable, path, err)
	}
	return r, nil
}

// validID reports whether id is one ID and Write can make.
func validID(id string) bool {
	if id == "" || id[0] == '.' || len(id) > 200 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
