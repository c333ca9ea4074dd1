package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const bootConfig = "[proxy]\nlisten = \":80\"\n" + `[[upstream]]
name = "v1"
url = "http://127.0.0.1:8001"
weight = 10
role = "stable"
`

// readConfigDir is dir's *.toml files by name.
func readConfigDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	names, err := configFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(data)
	}
	return files
}

func TestImportWithNothingOfferedChangesNothing(t *testing.T) {
	for name, src := range map[string]string{
		"no folder":             filepath.Join(t.TempDir(), "canaryd"),
		"a folder without toml": writeDir(t, map[string]string{"README.txt": "edit canaryd.toml here"}),
	} {
		dst := writeDir(t, map[string]string{"canaryd.toml": bootConfig})
		what, err := Import(src, dst)
		if err != nil || what != NothingOffered {
			t.Errorf("%s: Import = %v, %v; want NothingOffered", name, what, err)
		}
		if got := readConfigDir(t, dst); got["canaryd.toml"] != bootConfig || len(got) != 1 {
			t.Errorf("%s: the config directory changed: %v", name, got)
		}
	}
}

func TestImportInstallsAValidCopyInPlaceOfTheOldFiles(t *testing.T) {
	edited := strings.Replace(bootConfig, "weight = 10", "weight = 20", 1)
	src := writeDir(t, map[string]string{"canaryd.toml": edited, "._canaryd.toml": "\x00\x05mac", "notes.txt": "x"})
	dst := writeDir(t, map[string]string{"canaryd.toml": bootConfig, "old.toml": "# gone with the import\n", "admin.token": "secret\n"})

	what, err := Import(src, dst)
	if err != nil || what != Installed {
		t.Fatalf("Import = %v, %v; want Installed", what, err)
	}
	if got := readConfigDir(t, dst); len(got) != 1 || got["canaryd.toml"] != edited {
		t.Errorf("config files after the import: %v; want only the edited canaryd.toml", got)
	}
	if data, err := os.ReadFile(filepath.Join(dst, "admin.token")); err != nil || string(data) != "secret\n" {
		t.Errorf("admin.token after the import: %q, %v; want it untouched", data, err)
	}
	if c, err := Load(dst); err != nil || c.Upstreams[0].Weight != 20 {
		t.Errorf("Load after the import: %v; want weight 20", err)
	}
	if info, err := os.Stat(filepath.Join(dst, "canaryd.toml")); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("installed file: %v, %v; want mode 0644 (canaryd runs as another user)", info.Mode(), err)
	}
}

func TestImportOfAnUnchangedCopyKeepsEditsMadeSince(t *testing.T) {
	src := writeDir(t, map[string]string{"canaryd.toml": bootConfig})
	dst := writeDir(t, map[string]string{})
	if what, err := Import(src, dst); err != nil || what != Installed {
		t.Fatalf("first Import = %v, %v; want Installed", what, err)
	}
	// The operator edits /etc/canaryd over ssh; the card's copy stays old.
	edited := strings.Replace(bootConfig, "weight = 10", "weight = 7", 1)
	if err := os.WriteFile(filepath.Join(dst, "canaryd.toml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if what, err := Import(src, dst); err != nil || what != Unchanged {
		t.Fatalf("second Import = %v, %v; want Unchanged", what, err)
	}
	if got := readConfigDir(t, dst)["canaryd.toml"]; got != edited {
		t.Errorf("the unchanged copy overwrote the edit made since:\n%s", got)
	}
}

func TestImportRefusesAnInvalidCopyAndKeepsTheRunningConfig(t *testing.T) {
	src := writeDir(t, map[string]string{"canaryd.toml": strings.Replace(bootConfig, "http://", "htp://", 1)})
	dst := writeDir(t, map[string]string{"canaryd.toml": bootConfig})

	_, err := Import(src, dst)
	if err == nil {
		t.Fatal("an invalid copy was not refused")
	}
	msg := err.Error()
	if !strings.Contains(msg, filepath.Join(src, "canaryd.toml")+":5:") || !strings.Contains(msg, `unsupported scheme "htp"`) || strings.Contains(msg, "\n") {
		t.Errorf("refusal %q: want one line naming the file, line and problem", msg)
	}
	if got := readConfigDir(t, dst); got["canaryd.toml"] != bootConfig || len(got) != 1 {
		t.Errorf("the refused copy changed the config directory: %v", got)
	}
	if got := ImportRefusal(dst); got != msg {
		t.Errorf("ImportRefusal = %q, want %q", got, msg)
	}

	// Fixed on the card: installed, and the refusal is gone.
	if err := os.WriteFile(filepath.Join(src, "canaryd.toml"), []byte(bootConfig+"\n# fixed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if what, err := Import(src, dst); err != nil || what != Installed {
		t.Fatalf("Import of the fixed copy = %v, %v; want Installed", what, err)
	}
	if got := ImportRefusal(dst); got != "" {
		t.Errorf("ImportRefusal after the fixed copy = %q, want none", got)
	}
}

func TestImportRecordsAreNotConfig(t *testing.T) {
	src := writeDir(t, map[string]string{"canaryd.toml": bootConfig})
	dst := writeDir(t, map[string]string{})
	if _, err := Import(src, dst); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, RefusedFile), []byte("x\n"), 0o644)
	if names, err := configFiles(dst); err != nil || len(names) != 1 {
		t.Errorf("config files beside the import's records: %v, %v; want only canaryd.toml", names, err)
	}
}

// TestImportRemovesWhatAnInterruptedImportLeft: a power cut in the middle
// of an import leaves a temporary file in /etc/canaryd; the next import
// removes it and nothing else.
func TestImportRemovesWhatAnInterruptedImportLeft(t *testing.T) {
	dst := writeDir(t, map[string]string{
		"canaryd.toml":              bootConfig,
		".canaryd.toml.tmp-1234567": "[proxy]\nlis",
		".imported.tmp-89":          "",
		"notes.txt":                 "the operator's",
		".canaryd.toml.swp":         "an editor's",
	})
	for _, src := range []string{filepath.Join(t.TempDir(), "canaryd"), writeDir(t, map[string]string{"canaryd.toml": bootConfig})} {
		if _, err := Import(src, dst); err != nil {
			t.Fatal(err)
		}
		for _, gone := range []string{".canaryd.toml.tmp-1234567", ".imported.tmp-89"} {
			if _, err := os.Stat(filepath.Join(dst, gone)); !os.IsNotExist(err) {
				t.Errorf("%s still there after an import", gone)
			}
		}
		for _, kept := range []string{"canaryd.toml", "notes.txt", ".canaryd.toml.swp"} {
			if _, err := os.Stat(filepath.Join(dst, kept)); err != nil {
				t.Errorf("%s removed: %v", kept, err)
			}
		}
	}
}
