package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("old content, longer than the new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "new" {
		t.Fatalf("after Write: %q, %v; want \"new\"", data, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", info.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Write, want only state.json", len(entries))
	}
}

func TestWriteIntoAMissingDirectoryFailsAndCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "no", "such"), []byte("x"), 0o644); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed Write left %d entries", len(entries))
	}
}

// TestRemoveTemporaryTakesWhatAnInterruptedWriteLeft: the temporary file a
// kill between create and rename leaves goes, the files beside it stay.
func TestRemoveTemporaryTakesWhatAnInterruptedWriteLeft(t *testing.T) {
	dir := t.TempDir()
	files := map[string]bool{ // name: whether RemoveTemporary removes it
		".latch.json.tmp-123456": true,
		".1.json.tmp-9":          true,
		"latch.json":             false,
		"latch.json.corrupt":     false,
		".hidden":                false,
		"x.tmp-1":                false,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"sta`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemporary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the two temporary files", removed)
	}
	for name, gone := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if exists := err == nil; exists == gone {
			t.Errorf("%s: exists %v after RemoveTemporary, want %v", name, exists, !gone)
		}
	}
}
