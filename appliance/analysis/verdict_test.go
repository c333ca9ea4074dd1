package analysis

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func counts(requests, errors uint64) Counts {
	return Counts{Requests: requests, Errors: errors}
}

var issuePolicy = Policy{ErrorRate: 0.05, MinRequests: 20}

func TestJudge(t *testing.T) {
	tests := []struct {
		name           string
		canary, stable Counts
		policy         Policy
		want           State
		wantReason     string
	}{
		{
			name:   "a healthy canary is good",
			canary: counts(90, 1), stable: counts(180, 0), policy: issuePolicy,
			want:       Good,
			wantReason: "canary 1/90 errors (1.1%) < 5.0%",
		},
		{
			name:   "a failing canary next to a healthy stable is bad",
			canary: counts(90, 12), stable: counts(180, 0), policy: issuePolicy,
			want:       Bad,
			wantReason: "canary 12/90 errors (13.3%) ≥ 5.0% and worse than stable 0/180 (0.0%)",
		},
		{
			name:   "both failing alike is a shared failure, not the canary's",
			canary: counts(30, 30), stable: counts(60, 60), policy: issuePolicy,
			want:       Shared,
			wantReason: "canary 30/30 errors (100.0%) ≥ 5.0% but stable 60/60 (100.0%) fails at least as much: a shared failure, not the canary's fault",
		},
		{
			name:   "a canary failing at exactly stable's rate is a shared failure",
			canary: counts(30, 3), stable: counts(60, 6), policy: issuePolicy,
			want: Shared,
		},
		{
			name:   "a canary failing less than a failing stable is a shared failure",
			canary: counts(30, 3), stable: counts(60, 12), policy: issuePolicy,
			want: Shared,
		},
		{
			name:   "a canary failing slightly more than a failing stable is bad",
			canary: counts(20, 2), stable: counts(100, 9), policy: issuePolicy,
			want: Bad,
		},
		{
			name:   "a dead stable out of the rotation, with few requests, still counts",
			canary: counts(30, 30), stable: counts(1, 1), policy: issuePolicy,
			want: Shared,
		},
		{
			name:   "below min_requests there is no verdict, even all failing",
			canary: counts(19, 19), stable: counts(40, 0), policy: issuePolicy,
			want:       NotEnough,
			wantReason: "not enough traffic: canary 19 requests in the window, need 20",
		},
		{
			name:   "exactly min_requests is enough for a verdict",
			canary: counts(20, 20), stable: counts(40, 0), policy: issuePolicy,
			want: Bad,
		},
		{
			name:   "an error rate exactly at the threshold is bad",
			canary: counts(20, 1), stable: counts(40, 0), policy: issuePolicy,
			want:       Bad,
			wantReason: "canary 1/20 errors (5.0%) ≥ 5.0% and worse than stable 0/40 (0.0%)",
		},
		{
			name:   "an error rate exactly at a threshold of 7% is bad",
			canary: counts(100, 7), stable: counts(200, 0), policy: Policy{ErrorRate: 0.07, MinRequests: 20},
			want: Bad,
		},
		{
			name:   "an error rate exactly at a threshold of 30% is bad",
			canary: counts(10, 3), stable: counts(20, 0), policy: Policy{ErrorRate: 0.3, MinRequests: 10},
			want: Bad,
		},
		{
			name:   "an error rate just below the threshold is good",
			canary: counts(21, 1), stable: counts(40, 0), policy: issuePolicy,
			want: Good,
		},
		{
			name:   "a canary without any stable traffic to compare is bad",
			canary: counts(20, 5), stable: counts(0, 0), policy: issuePolicy,
			want:       Bad,
			wantReason: "canary 5/20 errors (25.0%) ≥ 5.0% and worse than stable 0/0 (0.0%)",
		},
		{
			name:   "no canary traffic at all is not enough, even with min_requests 0",
			canary: counts(0, 0), stable: counts(100, 50), policy: Policy{ErrorRate: 0.05},
			want:       NotEnough,
			wantReason: "not enough traffic: canary 0 requests in the window, need 1",
		},
		{
			name:   "a canary without errors is good even under a threshold of 0",
			canary: counts(50, 0), stable: counts(100, 0), policy: Policy{ErrorRate: 0, MinRequests: 20},
			want:       Good,
			wantReason: "canary 0/50 errors (0.0%)",
		},
		{
			name:   "a threshold under one percent shows its precision",
			canary: counts(400, 1), stable: counts(800, 0), policy: Policy{ErrorRate: 0.0025, MinRequests: 20},
			want:       Bad,
			wantReason: "canary 1/400 errors (0.2%) ≥ 0.25% and worse than stable 0/800 (0.0%)",
		},
		{
			name:   "a threshold of 100% needs every request failed",
			canary: counts(20, 19), stable: counts(40, 0), policy: Policy{ErrorRate: 1, MinRequests: 20},
			want: Good,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.canary, tt.stable, tt.policy)
			if v.State != tt.want {
				t.Errorf("state %v, want %v (%s)", v.State, tt.want, v.Reason)
			}
			if tt.wantReason != "" && v.Reason != tt.wantReason {
				t.Errorf("reason\n  %s\nwant\n  %s", v.Reason, tt.wantReason)
			}
		})
	}
}

// The issue's check: a canary answering 500 to every request, at weights
// 10 and 5 (v1 v2 v1 v1 v2 v1 ...), is red after 90 requests.
func TestCanaryAnswering500IsBadAfter90Requests(t *testing.T) {
	stable, canary := NewWindow(30*time.Second), NewWindow(30*time.Second)
	now := t0
	var v Verdict
	for i := range 90 {
		now = now.Add(50 * time.Millisecond)
		if i%3 == 1 {
			canary.Record(now, true, 2*time.Millisecond)
		} else {
			stable.Record(now, false, 3*time.Millisecond)
		}
		v = Judge(canary.Snapshot(now), stable.Snapshot(now), issuePolicy)
		// The 20th canary request is request 59 (index 58).
		if i < 58 && v.State != NotEnough {
			t.Fatalf("after %d requests: %v (%s), want not enough traffic", i+1, v.State, v.Reason)
		}
		if i >= 58 && v.State != Bad {
			t.Fatalf("after %d requests: %v (%s), want bad", i+1, v.State, v.Reason)
		}
	}
	const want = "canary 30/30 errors (100.0%) ≥ 5.0% and worse than stable 0/60 (0.0%)"
	if v.Reason != want {
		t.Errorf("reason after 90 requests\n  %s\nwant\n  %s", v.Reason, want)
	}
}

// TestStateNamesInStatusJSON: the verdict's names are the contract's, the
// same in String, in JSON both ways, and in States.
func TestStateNamesInStatusJSON(t *testing.T) {
	want := map[State]string{
		Good: "good", Bad: "bad", NotEnough: "not_enough_traffic", Shared: "shared_failure",
	}
	if got := States(); len(got) != len(want) {
		t.Errorf("States() = %v, want the %d verdicts", got, len(want))
	}
	for _, s := range States() {
		name, ok := want[s]
		if !ok {
			t.Errorf("States() has %d, which has no contract name", int(s))
			continue
		}
		if s.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), name)
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+name+`"` {
			t.Errorf("json.Marshal(%d) = %s, %v; want %q", int(s), b, err, name)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, s)
		}
	}
	var zero State
	if zero != NotEnough {
		t.Errorf("the zero State is %v, want not_enough_traffic", zero)
	}
	if got := State(9).String(); got != "State(9)" {
		t.Errorf("an unknown state's String() = %q, want State(9)", got)
	}
	if b, err := json.Marshal(State(9)); err == nil {
		t.Errorf("json.Marshal(State(9)) = %s, want an error", b)
	}
	var s State
	if err := json.Unmarshal([]byte(`"meh"`), &s); err == nil || !strings.Contains(err.Error(), `unknown verdict "meh"`) {
		t.Errorf("json.Unmarshal of an unknown verdict: %v, want an error naming it", err)
	}
}

// lanLatencies records n requests into w over 20 s, with latencies around
// mean as a LAN service gives them: mostly near it, a tail up to four times
// it. seed picks the sequence.
func lanLatencies(w *Window, n int, mean time.Duration, seed uint64) time.Time {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now := t0
	for range n {
		now = now.Add(20 * time.Second / time.Duration(n))
		f := 0.5 + r.Float64() // 0.5 to 1.5 times the mean
		if r.IntN(50) == 0 {
			f *= 1 + 1.5*r.Float64() // one in fifty up to four times
		}
		w.Record(now, false, time.Duration(f*float64(mean)))
	}
	return now
}

var latencyPolicy = Policy{ErrorRate: 0.05, MinRequests: 20, LatencyRatio: 2}

func TestACanaryAsFastAsStableIsNeverSlow(t *testing.T) {
	for _, mean := range []time.Duration{300 * time.Microsecond, 3 * time.Millisecond, 40 * time.Millisecond} {
		for seed := range uint64(20) {
			canary, stable := NewWindow(30*time.Second), NewWindow(30*time.Second)
			lanLatencies(canary, 3000, mean, seed)
			now := lanLatencies(stable, 6000, mean, seed+1000)
			if v := Judge(canary.Snapshot(now), stable.Snapshot(now), latencyPolicy); v.State != Good {
				t.Fatalf("mean %v, seed %d: both sides alike gave %v (%s), want good", mean, seed, v.State, v.Reason)
			}
		}
	}
}

func TestASlowerCanaryIsBadWithBothNumbers(t *testing.T) {
	canary, stable := NewWindow(30*time.Second), NewWindow(30*time.Second)
	lanLatencies(canary, 1000, 9*time.Millisecond, 1)
	now := lanLatencies(stable, 2000, 3*time.Millisecond, 2)
	v := Judge(canary.Snapshot(now), stable.Snapshot(now), latencyPolicy)
	if v.State != Bad || !strings.HasPrefix(v.Reason, "canary p99 ") || !strings.Contains(v.Reason, " > 2 × stable p99 ") {
		t.Fatalf("a canary three times slower: %v (%s), want bad naming both p99s", v.State, v.Reason)
	}
	// Off, the same numbers are good.
	off := latencyPolicy
	off.LatencyRatio = 0
	if v := Judge(canary.Snapshot(now), stable.Snapshot(now), off); v.State != Good {
		t.Errorf("latency_ratio 0: %v (%s), want good", v.State, v.Reason)
	}
	// A ratio above the difference: good.
	lax := latencyPolicy
	lax.LatencyRatio = 10
	if v := Judge(canary.Snapshot(now), stable.Snapshot(now), lax); v.State != Good {
		t.Errorf("latency_ratio 10: %v (%s), want good", v.State, v.Reason)
	}
}

func TestLatencyNeedsEnoughStableRequestsToCompare(t *testing.T) {
	canary, stable := NewWindow(30*time.Second), NewWindow(30*time.Second)
	lanLatencies(canary, 100, 30*time.Millisecond, 1)
	now := lanLatencies(stable, 5, time.Millisecond, 2)
	if v := Judge(canary.Snapshot(now), stable.Snapshot(now), latencyPolicy); v.State != Good {
		t.Errorf("5 stable requests against min_requests 20: %v (%s), want good (nothing to compare with)", v.State, v.Reason)
	}
}

// TestAFewRequestsDoNotMakeAP99: 20 canary requests, one of them slow, is
// not a slower canary: the p99 of 20 is their slowest.
func TestAFewRequestsDoNotMakeAP99(t *testing.T) {
	canary, stable := NewWindow(30*time.Second), NewWindow(30*time.Second)
	lanLatencies(canary, 60, 500*time.Microsecond, 1)
	canary.Record(t0.Add(time.Second), false, 3*time.Millisecond)
	now := lanLatencies(stable, 3000, 500*time.Microsecond, 2)
	if v := Judge(canary.Snapshot(now), stable.Snapshot(now), latencyPolicy); v.State != Good {
		t.Errorf("61 canary requests, one slow: %v (%s), want good (too few for a p99)", v.State, v.Reason)
	}
	lanLatencies(canary, LatencySamples, 5*time.Millisecond, 3)
	if v := Judge(canary.Snapshot(now), stable.Snapshot(now), latencyPolicy); v.State != Bad {
		t.Errorf("then %d slow ones: %v (%s), want bad", LatencySamples, v.State, v.Reason)
	}
}

func TestErrorsAreJudgedBeforeLatency(t *testing.T) {
	slowFailing := Counts{Requests: 100, Errors: 50}
	slowFailing.Hist[windowBucket(time.Second)] = 100
	fastStable := Counts{Requests: 100, Errors: 0}
	fastStable.Hist[windowBucket(time.Millisecond)] = 100
	if v := Judge(slowFailing, fastStable, latencyPolicy); v.State != Bad || !strings.Contains(v.Reason, "errors") {
		t.Errorf("slow and failing: %v (%s), want bad for its errors", v.State, v.Reason)
	}
	bothFailing := fastStable
	bothFailing.Errors = 100
	if v := Judge(slowFailing, bothFailing, latencyPolicy); v.State != Shared {
		t.Errorf("slow, but failing no more than stable: %v (%s), want a shared failure", v.State, v.Reason)
	}
}
