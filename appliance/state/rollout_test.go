package state

import (
	"os"
	"testing"
	"time"
)

func TestRolloutSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, _, _, err := Open(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.LoadRollout(); r != (Rollout{}) {
		t.Fatalf("fresh dir: %+v", r)
	}
	want := Rollout{Version: "v2", Step: 2, Entered: now, Paused: true, PausedAt: now.Add(time.Minute)}
	if err := s.SaveRollout(want); err != nil {
		t.Fatal(err)
	}
	s2, _, aside, err := Open(dir, now)
	if err != nil || aside != nil {
		t.Fatal(err, aside)
	}
	got := s2.LoadRollout()
	if got.Version != want.Version || got.Step != want.Step || !got.Entered.Equal(want.Entered) ||
		got.Paused != want.Paused || !got.PausedAt.Equal(want.PausedAt) {
		t.Errorf("after reopen %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("want only %s in the state dir, found %v", RolloutFileName, entries)
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
	if os.Remove(s.LivePath()); s.LoadLive() != (Live{}) {
		t.Errorf("a missing file reads as a Live")
	}
}
