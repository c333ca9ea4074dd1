package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/canary-pi/canary-pi/appliance/atomicfile"
)

// The records Import keeps in the directory it installs into. Their names
// start with a dot, so the loader and the watcher pass over them.
const (
	// ImportedFile holds the digest of the last copy installed, so that a
	// copy nobody changed since is not installed again over edits made in
	// the directory itself.
	ImportedFile = ".imported"
	// RefusedFile holds the one-line reason the last copy offered was
	// refused; it is absent when the last copy was installed.
	RefusedFile = ".import-refused"
)

// Imported says what Import did.
type Imported int

const (
	NothingOffered Imported = iota // src has no *.toml file
	Unchanged                      // src is the copy installed last time
	Installed                      // src was new and valid, and is now dst's config
)

// Import installs the config files of src (the copy on a Pi's FAT boot
// partition, which any laptop can edit) into dst (/etc/canaryd) when they
// changed since the last import and validate. An invalid copy is refused:
// dst keeps its config, and the reason is returned and kept in dst's
// RefusedFile for canaryd to show until a config that works is in place.
//
// The installed *.toml files replace dst's: a file removed from src is
// removed from dst. Each file is replaced atomically: a power cut leaves it
// old or new, and the temporary file it may leave is removed by the next
// Import, which runs before anything else writes dst (the unit's
// ExecStartPre).
func Import(src, dst string) (Imported, error) {
	if _, err := atomicfile.RemoveTemporary(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	names, err := configFiles(src)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(names) == 0 {
		return NothingOffered, nil
	}
	if err != nil {
		return 0, err
	}
	cfg, err := Load(src)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			pos := ce.Pos
			pos.File = filepath.Join(src, pos.File)
			err = &Error{Pos: pos, Msg: ce.Msg}
		}
		err = fmt.Errorf("import refused, %s keeps its config: %w", dst, err)
		if werr := atomicfile.Write(filepath.Join(dst, RefusedFile), []byte(err.Error()+"\n"), 0o644); werr != nil {
			return 0, fmt.Errorf("%w (and %v)", err, werr)
		}
		return 0, err
	}
	digest := hex.EncodeToString(cfg.Digest[:]) + "\n"
	last, _ := os.ReadFile(filepath.Join(dst, ImportedFile))
	if string(last) == digest {
		return Unchanged, removeIfPresent(filepath.Join(dst, RefusedFile))
	}
	if err := install(cfg.Files, dst); err != nil {
		return 0, err
	}
	if err := atomicfile.Write(filepath.Join(dst, ImportedFile), []byte(digest), 0o644); err != nil {
		return 0, err
	}
	return Installed, removeIfPresent(filepath.Join(dst, RefusedFile))
}

// install writes files into dst under their names and removes dst's other
// config files.
func install(files []string, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	keep := make([]string, 0, len(files))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		name := filepath.Base(path)
		if err := atomicfile.Write(filepath.Join(dst, name), data, 0o644); err != nil {
			return err
		}
		keep = append(keep, name)
	}
	old, err := configFiles(dst)
	if err != nil {
		return err
	}
	for _, name := range old {
		if !slices.Contains(keep, name) {
			if err := os.Remove(filepath.Join(dst, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ImportRefusal is the reason the last copy offered to dst was refused, ""
// when there is none.
func ImportRefusal(dst string) string {
	data, err := os.ReadFile(filepath.Join(dst, RefusedFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
