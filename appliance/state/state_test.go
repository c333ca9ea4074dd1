package state

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestTransitions(t *testing.T) {
	rolled := Latch{Mode: RolledBack, Version: "v2", Cause: "button", At: now}
	promoted := Latch{Mode: Promoted, Version: "v2", Cause: "command", At: now}
	tests := []struct {
		name    string
		from    Latch
		action  func(Latch) (Latch, error)
		want    Mode
		wantErr string
	}{
		{"rollback from canary", Latch{}, func(l Latch) (Latch, error) { return l.Rollback(true, "v2", "command", now) }, RolledBack, ""},
		{"rollback is idempotent and keeps the first cause", rolled, func(l Latch) (Latch, error) { return l.Rollback(true, "v2", "command", now) }, RolledBack, ""},
		{"rollback from promoted", promoted, func(l Latch) (Latch, error) { return l.Rollback(true, "v2", "command", now) }, RolledBack, ""},
		{"rollback without canary is refused", Latch{}, func(l Latch) (Latch, error) { return l.Rollback(false, "", "command", now) }, NoCanary, "no canary"},
		{"promote from canary", Latch{}, func(l Latch) (Latch, error) { return l.Promote(true, "v2", "command", now) }, Promoted, ""},
		{"promote while rolled back is refused", rolled, func(l Latch) (Latch, error) { return l.Promote(true, "v2", "command", now) }, RolledBack, "resume first"},
		{"resume clears a rollback", rolled, func(l Latch) (Latch, error) { return l.Resume(true) }, Canary, ""},
		{"resume clears a promotion", promoted, func(l Latch) (Latch, error) { return l.Resume(true) }, Canary, ""},
		{"resume without canary is refused", Latch{}, func(l Latch) (Latch, error) { return l.Resume(false) }, NoCanary, "no canary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.action(tt.from)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if got != tt.from {
					t.Fatalf("a refused action changed the latch: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hasCanary := tt.want != NoCanary
			if m := got.ModeFor(hasCanary); m != tt.want {
				t.Fatalf("mode %q, want %q", m, tt.want)
			}
		})
	}
	if l, _ := rolled.Rollback(true, "v2", "command", now.Add(time.Hour)); l.Cause != "button" || !l.At.Equal(now) {
		t.Errorf("a second rollback overwrote the first: %+v", l)
	}
}

// A rollback the fleet made here becomes this member's own when it is
// rolled back here too (a press, a command): its own is what a resume
// elsewhere that did not see it must leave in place.
func TestARollbackHereMakesTheFleetsRollbackThisMembersOwn(t *testing.T) {
	byFleet := Latch{Mode: RolledBack, Version: "v2", Cause: CauseFleet, At: now}
	later := now.Add(time.Minute)
	if l, _ := byFleet.Rollback(true, "v2", CauseButton, later); l.Cause != CauseButton || !l.At.Equal(later) {
		t.Errorf("a press on a member the fleet rolled back: %+v, want the press's own rollback", l)
	}
	if l, _ := byFleet.Rollback(true, "v2", CauseFleet, later); l != byFleet {
		t.Errorf("the fleet again: %+v, want the latch as it was", l)
	}
}

func TestSameVersionKeepsTheLatchNewVersionRearms(t *testing.T) {
	l := Latch{Mode: RolledBack, Version: "v2", Cause: "button", At: now}
	if got := l.ForVersion("v2"); got != l {
		t.Errorf("same version: %+v", got)
	}
	if got := l.ForVersion("v3"); got.Latched() {
		t.Errorf("new version kept the latch: %+v", got)
	}
}

func TestRollbackSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, l, warn, err := Open(dir, now)
	if err != nil || warn != nil || l.Latched() {
		t.Fatalf("fresh dir: %+v %v %v", l, warn, err)
	}
	want := Latch{Mode: RolledBack, Version: "v2", Cause: "button", At: now}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	_, got, warn, err := Open(dir, now)
	if err != nil || warn != nil {
		t.Fatal(err, warn)
	}
	if got.Mode != want.Mode || got.Version != want.Version || got.Cause != want.Cause || !got.At.Equal(want.At) {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

// TestAnUnreadableStateFileIsKeptAsideAndLatchesARollback: a torn or
// garbage latch, rollout or canary.json (a failing SD card) is renamed
// aside, and Open comes back rolled back, saved, for whichever version
// comes first; the other files are left as they are.
func TestAnUnreadableStateFileIsKeptAsideAndLatchesARollback(t *testing.T) {
	good := map[string]string{
		FileName:        `{"state": "", "version": "", "cause": "", "at": "0001-01-01T00:00:00Z"}`,
		RolloutFileName: `{"version": "v2", "step": 1, "percent": 50, "entered": "2026-12-01T10:00:00Z", "paused": false}`,
		LiveFileName:    `{"version": "v2", "since": "2026-12-01T10:00:00Z"}`,
	}
	common := map[string]string{
		"garbage":     "\x00\xff\x17garbage",
		"torn":        `{"version": "v2", "st`,
		"empty":       "",
		"wrong shape": `[1, 2, 3]`,
	}
	only := map[string]map[string]string{
		FileName:        {"unknown state": `{"state": "sideways"}`},
		RolloutFileName: {"negative step": `{"version": "v2", "step": -1}`, "percent of 200": `{"version": "v2", "percent": 200}`, "no version": `{"step": 0}`},
		LiveFileName:    {"no version": `{"since": "2026-12-01T10:00:00Z"}`, "no time": `{"version": "v2"}`},
	}
	for _, file := range []string{FileName, RolloutFileName, LiveFileName} {
		cases := maps.Clone(common)
		maps.Copy(cases, only[file])
		for what, content := range cases {
			t.Run(file+"/"+what, func(t *testing.T) {
				dir := t.TempDir()
				for name, text := range good {
					if name == file {
						text = content
					}
					if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				s, l, aside, err := Open(dir, now)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, file)
				if len(aside) != 1 || aside[0].Path != path || aside[0].Kept != path+".corrupt" || aside[0].Err == nil {
					t.Fatalf("kept aside %v, want %s only", aside, file)
				}
				if l.Mode != RolledBack || l.Cause != CauseUnreadable || l.Version != "" {
					t.Errorf("latch %+v, want a rollback for an unreadable file, of no version yet", l)
				}
				if got, err := os.ReadFile(path + ".corrupt"); err != nil || string(got) != content {
					t.Errorf("the unreadable file was not kept as it was: %q, %v", got, err)
				}
				for name, text := range good {
					if got, _ := os.ReadFile(filepath.Join(dir, name)); name != file && name != FileName && string(got) != text {
						t.Errorf("%s changed: %q", name, got)
					}
				}
				if file == RolloutFileName && s.LoadRollout() != (Rollout{}) {
					t.Errorf("a rollout was read from a file kept aside")
				}
				if file == LiveFileName && s.LoadLive() != (Live{}) {
					t.Errorf("a Live was read from a file kept aside")
				}
				if got := l.ForVersion("v2"); got.Mode != RolledBack || got.Version != "v2" {
					t.Errorf("the fail-safe latch must hold for the first version applied: %+v", got)
				}
				// The safe latch was itself persisted, whole.
				_, again, aside, err := Open(dir, now)
				if err != nil || again.Mode != RolledBack || aside != nil {
					t.Errorf("reopened: latch %+v, kept aside %v, %v; want the saved rollback", again, aside, err)
				}
			})
		}
	}
}

// TestOpenKeepsARollbackAndRemovesWhatAKillLeft: a rollback taken by an
// operator keeps its cause when another file is unreadable, and the
// temporary files of a write a kill interrupted are removed.
func TestOpenKeepsARollbackAndRemovesWhatAKillLeft(t *testing.T) {
	dir := t.TempDir()
	s, _, _, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	taken := Latch{Mode: RolledBack, Version: "v2", Cause: CauseButton, At: now}
	if err := s.Save(taken); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{RolloutFileName: "{", ".latch.json.tmp-42": `{"sta`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, l, aside, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if l != taken || len(aside) != 1 {
		t.Errorf("latch %+v, kept aside %v; want %+v and the rollout", l, aside, taken)
	}
	if _, err := os.Stat(filepath.Join(dir, ".latch.json.tmp-42")); !os.IsNotExist(err) {
		t.Errorf("the temporary file a kill left is still there: %v", err)
	}
}

// TestStateFileFormat: the latch's file spells mode and cause as the status
// JSON does, and a file written before Cause had a type still reads.
func TestStateFileFormat(t *testing.T) {
	dir := t.TempDir()
	s, _, _, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(Latch{Mode: RolledBack, Version: "v2", Cause: CauseButton, At: now}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state":"rolled_back"`, `"version":"v2"`, `"cause":"button"`, `"at":"2026-11-26T12:00:00Z"`} {
		if !strings.Contains(strings.ReplaceAll(string(b), " ", ""), want) {
			t.Errorf("state file %s lacks %s", b, want)
		}
	}

	old := `{"state":"promoted","version":"v3","cause":"api","at":"2026-11-26T12:00:00Z"}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	_, l, warn, err := Open(dir, now)
	if err != nil || warn != nil {
		t.Fatal(err, warn)
	}
	if l.Mode != Promoted || l.Version != "v3" || l.Cause != CauseAPI || !l.At.Equal(now) {
		t.Errorf("an existing state file reads as %+v", l)
	}
}

func TestCausesAreTheActionsCauses(t *testing.T) {
	want := map[Cause]string{CauseCommand: "command", CauseAPI: "api", CauseButton: "button", CauseAuto: "auto", CauseFleet: "fleet"}
	got := Causes()
	if len(got) != len(want) {
		t.Errorf("Causes() = %v, want %d causes", got, len(want))
	}
	for _, c := range got {
		if string(c) != want[c] {
			t.Errorf("cause %q is not one of %v", c, want)
		}
	}
}
