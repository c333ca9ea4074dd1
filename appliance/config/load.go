package config

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Error is a problem in the config directory, at a place the user can go and
// fix. Its text is one line: "canaryd.toml:14: upstream "w2": ...".
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Load reads every *.toml file directly in dir, in lexical order, merges them
// and validates the result. It changes nothing on disk and nothing in memory
// but the Config it returns, so a caller can try a reload and keep its current
// Config when Load fails.
//
// When the directory has several problems, the error is the first one in file
// and line order, so fixing errors top to bottom converges.
func Load(dir string) (*Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	names, err := configFiles(abs)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, errEmpty)
	}
	return load(abs, names)
}

// errEmpty is a config directory without a config file.
var errEmpty = errors.New("no *.toml config file")

// IsEmpty reports whether err is Load's of a directory with no config file.
func IsEmpty(err error) bool { return errors.Is(err, errEmpty) }

// LoadPath is Load for a directory, or, for a file, the config that file
// alone makes, as if it were the only file in its directory (as
// make image CONFIG= takes it): paths in it are relative to that directory.
func LoadPath(path string) (*Config, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return Load(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return load(filepath.Dir(abs), []string{filepath.Base(abs)})
}

// load reads the named files of the directory abs and validates them as
// one config.
func load(abs string, names []string) (*Config, error) {

	var errs errorList
	digest := sha256.New()
	files := make([]*file, 0, len(names))
	paths := make([]string, 0, len(names))
	for _, name := range names {
		path := filepath.Join(abs, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(digest, "%s\x00%d\x00", name, len(data))
		digest.Write(data)
		// A syntax error makes the rest of the directory's errors guesswork
		// (a key may be missing only because its file did not parse), so it
		// is reported alone.
		f, err := parseFile(name, data, &errs)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		paths = append(paths, path)
	}

	c := decode(merge(files, &errs), abs, &errs)
	if err := errs.first(); err != nil {
		return nil, err
	}
	c.Files = paths
	digest.Sum(c.Digest[:0])
	return c, nil
}

// configFiles lists the names of the config files in dir, sorted. Only
// regular files named *.toml count, reached directly or through a symlink
// (as Kubernetes mounts a ConfigMap); everything else a package manager or an
// editor leaves behind (x.toml.dpkg-new, x.toml~, .x.toml.swp) is skipped
// because its name does not end in .toml or starts with a dot.
func configFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if !IsConfigName(name) {
			continue
		}
		// Stat follows symlinks; a dangling one is an error rather than a
		// silently missing file, which could drop upstreams without a word.
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if info.Mode().IsRegular() {
			names = append(names, name)
		}
	}
	return names, nil
}

// IsConfigName reports whether a file of this name in the config directory
// is config: *.toml, not a dotfile. What a package manager or an editor
// leaves behind (x.toml.dpkg-new, x.toml~, .x.toml.swp) is not.
func IsConfigName(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".toml")
}

// errorList collects the problems found while decoding, so that Load can
// report the first one in reading order rather than in checking order.
type errorList []*Error

func (l *errorList) add(pos Pos, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (l errorList) first() error {
	if len(l) == 0 {
		return nil
	}
	return slices.MinFunc(l, func(a, b *Error) int { return comparePos(a.Pos, b.Pos) })
}

// comparePos orders positions as the files are read. A position without a
// line (a missing key) sorts after the lines of its file: a problem the user
// can see in the text is the better one to start with.
func comparePos(a, b Pos) int {
	if c := strings.Compare(a.File, b.File); c != 0 {
		return c
	}
	line := func(p Pos) int {
		if p.Line == 0 {
			return math.MaxInt
		}
		return p.Line
	}
	return cmp.Compare(line(a), line(b))
}
