package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRolloutSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, _, _, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if r, warn, err := s.LoadRollout(); err != nil || warn != "" || r != (Rollout{}) {
		t.Fatalf("fresh dir: %+v %q %v", r, warn, err)
	}
	want := Rollout{Version: "v2", Step: 2, Entered: now, Paused: true, PausedAt: now.Add(time.Minute)}
	if err := s.SaveRollout(want); err != nil {
		t.Fatal(err)
	}
	s2, _, _, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	got, warn, err := s2.LoadRollout()
	if err != nil || warn != "" {
		t.Fatal(err, warn)
	}
	if got.Version != want.Version || got.Step != want.Step || !got.Entered.Equal(want.Entered) ||
		got.Paused != want.Paused || !got.PausedAt.Equal(want.PausedAt) {
		t.Errorf("after reopen %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("want only %s in the state dir, found %v", RolloutFileName, entries)
	}
}

// TestUnreadableRolloutFileStartsAtTheFirstStep: a torn or garbage file is
// kept aside, and the canary starts over at its smallest share.
func TestUnreadableRolloutFileStartsAtTheFirstStep(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "{garbage",
		"torn":          `{"version":"v2","st`,
		"negative step": `{"version":"v2","step":-1}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, _, err := Open(dir, now)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, RolloutFileName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			r, warn, err := s.LoadRollout()
			if err != nil {
				t.Fatal(err)
			}
			if r != (Rollout{}) || !strings.Contains(warn, "first step") {
				t.Errorf("rollout %+v, warning %q", r, warn)
			}
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Errorf("the unreadable file was not kept aside: %v", err)
			}
		})
	}
}

func TestLiveSurvivesRestartAndGarbageIsNone(t *testing.T) {
	dir := t.TempDir()
	s, _, _, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.LoadLive(); got != (Live{}) {
		t.Errorf("fresh dir: %+v", got)
	}
	if err := s.SaveLive(Live{Version: "v2", Since: now}); err != nil {
		t.Fatal(err)
	}
	if got := s.LoadLive(); got.Version != "v2" || !got.Since.Equal(now) {
		t.Errorf("after save: %+v", got)
	}
	os.WriteFile(s.LivePath(), []byte("{torn"), 0o600)
	if got := s.LoadLive(); got != (Live{}) {
		t.Errorf("a torn file reads as %+v, want none", got)
	}
}
