package decide

import (
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/state"
)

var schedule = Schedule{Steps: []float64{10, 50}, Interval: time.Minute, MinRequests: 20}

var (
	calm = analysis.Gauge{Evidence: 0.5, Threshold: 150}
	good = analysis.Verdict{State: analysis.Good, Reason: "canary 0/40 errors", Errors: calm}
	bad  = analysis.Verdict{State: analysis.Bad, Reason: "canary 30/30 errors (100.0%)", Errors: analysis.Gauge{Evidence: 2000, Threshold: 150}}
	thin = analysis.Verdict{State: analysis.NotEnough, Reason: "not enough traffic: canary 3 requests", Errors: calm}
	wary = analysis.Verdict{State: analysis.Good, Reason: "canary 5 of 6 errors", Errors: analysis.Gauge{Evidence: 40, Threshold: 150}}
)

// seen is what the daemon saw: requests at the step, as many in the last
// window, and no more needed for safety.
func seen(m state.Mode, v analysis.Verdict, requests uint64) Observed {
	return Observed{Mode: m, Verdict: v, Requests: requests, Recent: requests, Window: 30 * time.Second}
}

// needing is o with safety needing n requests to rule out a 5% error rate.
func needing(o Observed, n uint64) Observed {
	o.Safety = analysis.Safety{RuleOut: 0.05, StableRate: 0.004, Needed: n}
	return o
}

// vanished is o without requests in the last window.
func vanished(o Observed) Observed {
	o.Recent = 0
	return o
}

func TestRolloutAdvancesOnlyOnAGoodVerdictWithEnoughTraffic(t *testing.T) {
	first := Start("v2", schedule, t0)
	last := state.Rollout{Version: "v2", Step: 1, Percent: 50, Entered: t0}
	due := t0.Add(time.Minute)
	tests := []struct {
		name    string
		r       state.Rollout
		s       Schedule
		o       Observed
		now     time.Time
		move    Move
		step    int
		nextAt  time.Time
		holding string // a part of it; "" for none
	}{
		{"before the interval: on schedule", first, schedule, seen(state.Canary, good, 100), t0.Add(30 * time.Second), Stay, 0, due, ""},
		{"too little traffic so far is no reason to hold yet", first, schedule, seen(state.Canary, thin, 3), t0.Add(30 * time.Second), Stay, 0, due, ""},
		{"the interval passed, good, enough: the next step", first, schedule, seen(state.Canary, good, 20), due, Advance, 1, time.Time{}, ""},
		{"no traffic is not success", first, schedule, seen(state.Canary, good, 19), due, Stay, 0, time.Time{}, "had 19 requests at this step, need 20"},
		{"not enough for a verdict", first, schedule, seen(state.Canary, thin, 25), due, Stay, 0, time.Time{}, "waiting for a good verdict"},
		{"a bad verdict holds at once", first, schedule, seen(state.Canary, bad, 100), t0.Add(time.Second), Stay, 0, time.Time{}, "failing: canary 30/30"},
		{"paused", state.Rollout{Version: "v2", Percent: 10, Entered: t0, Paused: true}, schedule, seen(state.Canary, good, 100), due, Stay, 0, time.Time{}, "paused"},
		{"rolled back", first, schedule, seen(state.RolledBack, good, 100), due, Stay, 0, time.Time{}, "rolled back"},
		{"promoted", last, schedule, seen(state.Promoted, good, 100), due, Stay, 1, time.Time{}, "promoted"},
		{"the last step waits for a manual promote", last, schedule, seen(state.Canary, good, 100), due, Stay, 1, time.Time{}, "canaryctl promote"},
		{"the last step: no next_at before the interval", last, autoPromote(), seen(state.Canary, good, 100), t0.Add(time.Second), Stay, 1, time.Time{}, ""},
		{"the last step promotes by itself with promote = auto", last, autoPromote(), seen(state.Canary, good, 20), due, Finish, 1, time.Time{}, ""},
		{"auto promotion waits for traffic too", last, autoPromote(), seen(state.Canary, good, 2), due, Stay, 1, time.Time{}, "not enough traffic"},
		{"silence is evidence only with enough traffic to have seen a regression", first, schedule, needing(seen(state.Canary, good, 300), 1500), due, Stay, 0, time.Time{},
			"needs about 1200 more canary requests to rule out a 5.0% error rate (the stable's is 0.4%)"},
		{"with that traffic: the next step", first, schedule, needing(seen(state.Canary, good, 1500), 1500), due, Advance, 1, time.Time{}, ""},
		{"traffic that vanished is no evidence", first, schedule, vanished(seen(state.Canary, good, 100)), due, Stay, 0, time.Time{}, "no requests in the last 30s"},
		{"a suspicion is no promotion", last, autoPromote(), seen(state.Canary, wary, 100), due, Stay, 1, time.Time{}, "suspect: the evidence against the canary is 40x (bad at 150x); a step advances below 12x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pos := Progress(tt.r, tt.s, tt.o, tt.now)
			if pos.Move != tt.move || pos.Rollout.Step != tt.step || !pos.NextAt.Equal(tt.nextAt) {
				t.Errorf("move %v, step %d, next_at %v; want %v, %d, %v", pos.Move, pos.Rollout.Step, pos.NextAt, tt.move, tt.step, tt.nextAt)
			}
			if (tt.holding == "") != (pos.Holding == "") || !strings.Contains(pos.Holding, tt.holding) {
				t.Errorf("holding %q, want %q", pos.Holding, tt.holding)
			}
			if strings.Contains(pos.Holding, "\n") {
				t.Errorf("holding is more than one line: %q", pos.Holding)
			}
			if pos.Move == Advance && (!pos.Rollout.Entered.Equal(tt.now) || pos.Rollout.Percent != tt.s.Steps[pos.Rollout.Step]) {
				t.Errorf("advanced to %+v: want entered now, at the step's percent", pos.Rollout)
			}
		})
	}
}

func autoPromote() Schedule {
	s := schedule
	s.AutoPromote = true
	return s
}

func TestRestoredRollout(t *testing.T) {
	four := Schedule{Steps: []float64{1, 5, 25, 50}, Interval: time.Minute}
	at25 := state.Rollout{Version: "v2", Step: 2, Percent: 25, Entered: t0}
	later := t0.Add(time.Hour)
	tests := []struct {
		name    string
		r       state.Rollout
		version string
		s       Schedule
		want    state.Rollout
		changed bool
	}{
		{"no state file: the first step, now", state.Rollout{}, "v2", four, state.Rollout{Version: "v2", Percent: 1, Entered: later}, true},
		{"the same version goes on where it was", at25, "v2", four, at25, false},
		{"a new version starts at the first step", at25, "v3", four, state.Rollout{Version: "v3", Percent: 1, Entered: later}, true},
		{"edited steps keep the share, never raise it", at25, "v2", Schedule{Steps: []float64{10, 20, 30}}, state.Rollout{Version: "v2", Step: 1, Percent: 20, Entered: t0}, true},
		{"a share below every new step: the first", at25, "v2", Schedule{Steps: []float64{40, 60}}, state.Rollout{Version: "v2", Step: 0, Percent: 40, Entered: t0}, true},
		{"fewer steps than the index", state.Rollout{Version: "v2", Step: 3, Percent: 50, Entered: t0}, "v2", schedule, state.Rollout{Version: "v2", Step: 1, Percent: 50, Entered: t0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := Restored(tt.r, tt.version, tt.s, later)
			if !sameRollout(got, tt.want) || changed != tt.changed {
				t.Errorf("got %+v (changed %v), want %+v (%v)", got, changed, tt.want, tt.changed)
			}
		})
	}
}

func sameRollout(a, b state.Rollout) bool {
	return a.Version == b.Version && a.Step == b.Step && a.Percent == b.Percent && a.Entered.Equal(b.Entered) &&
		a.Paused == b.Paused && a.PausedAt.Equal(b.PausedAt)
}

// TestPauseHoldsTheScheduleWhereItIs: the time paused does not count
// against the step, so a resume goes on with what was left of it.
func TestPauseHoldsTheScheduleWhereItIs(t *testing.T) {
	r := Start("v2", schedule, t0)
	paused, err := Pause(r, state.Canary, t0.Add(20*time.Second))
	if err != nil || !paused.Paused {
		t.Fatalf("pause: %+v, %v", paused, err)
	}
	again, err := Pause(paused, state.Canary, t0.Add(30*time.Second))
	if err != nil || !sameRollout(again, paused) {
		t.Errorf("a second pause changed %+v to %+v (%v)", paused, again, err)
	}
	resumed := Unpause(paused, t0.Add(20*time.Second+time.Hour))
	if resumed.Paused || !resumed.Entered.Equal(t0.Add(time.Hour)) {
		t.Errorf("after an hour's pause: %+v, want entered an hour later, not paused", resumed)
	}
	pos := Progress(resumed, schedule, seen(state.Canary, good, 100), t0.Add(time.Hour+50*time.Second))
	if pos.Move != Stay || !pos.NextAt.Equal(t0.Add(time.Hour+time.Minute)) {
		t.Errorf("40 s of the step were left: %+v", pos)
	}
	if u := Unpause(r, t0); !sameRollout(u, r) {
		t.Errorf("unpausing a running rollout changed it: %+v", u)
	}
	for _, m := range []state.Mode{state.RolledBack, state.Promoted} {
		if _, err := Pause(r, m, t0); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("pause while %s: %v, want a one-line refusal", m, err)
		}
	}
}
