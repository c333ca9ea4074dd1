package state

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// file is one of the state directory's JSON files: its name, and what
// makes a value read from it whole. Every state file is read, checked and
// written the same way: Store.write makes the write atomic.
type file[T any] struct {
	name  string
	check func(T) error
}

// parse is the value in data, a file's content, when it is whole.
func (f file[T]) parse(data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, err
	}
	if err := f.check(v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// valid says what is wrong with data as the file's content, nil if
// nothing: Open's check of every state file.
func (f file[T]) valid(data []byte) error {
	_, err := f.parse(data)
	return err
}

// path is the file in s's directory.
func (f file[T]) path(s *Store) string { return filepath.Join(s.dir, f.name) }

// load reads the file; ok is false when it is missing, or turned
// unreadable since Open kept the unreadable ones aside.
func (f file[T]) load(s *Store) (v T, ok bool) {
	data, err := os.ReadFile(f.path(s))
	if err != nil {
		return v, false
	}
	v, err = f.parse(data)
	return v, err == nil
}

// save writes v to the file durably.
func (f file[T]) save(s *Store, v T) error { return s.write(f.path(s), f.name, v) }
