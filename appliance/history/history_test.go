package history

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// at is the moment of the i-th sample after t0.
func at(i int) time.Time { return t0.Add(time.Duration(i) * Interval) }

func TestSamplesHoldWhatTheCountersGrewBy(t *testing.T) {
	tests := []struct {
		name   string
		canary []Totals // cumulative, one per sample
		want   []Role
	}{
		{"the first sample counts from zero",
			[]Totals{{Requests: 10, Errors: 1}},
			[]Role{{Requests: 10, Errors: 1}}},
		{"later ones count the growth",
			[]Totals{{Requests: 10, Errors: 1}, {Requests: 25, Errors: 4}, {Requests: 25, Errors: 4}},
			[]Role{{Requests: 10, Errors: 1}, {Requests: 15, Errors: 3}, {}}},
		{"a counter that went down restarted from zero",
			[]Totals{{Requests: 100, Errors: 10}, {Requests: 7, Errors: 2}, {Requests: 9, Errors: 2}},
			[]Role{{Requests: 100, Errors: 10}, {Requests: 7, Errors: 2}, {Requests: 2}}},
		{"never more errors than requests",
			[]Totals{{Requests: 100, Errors: 50}, {Requests: 103, Errors: 40}},
			[]Role{{Requests: 100, Errors: 50}, {Requests: 3, Errors: 3}}},
		{"p99 is the one passed in, in milliseconds",
			[]Totals{{Requests: 1, P99: 1234567 * time.Nanosecond}, {Requests: 2}},
			[]Role{{Requests: 1, P99Ms: 1.2}, {Requests: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			for i, c := range tt.canary {
				h.Record(at(i), c, Totals{Requests: uint64(i)}, Evidence{})
			}
			var got []Role
			for _, s := range h.Snapshot(at(len(tt.canary))).Samples {
				got = append(got, s.Canary)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("canary samples %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRolesAreCountedApart(t *testing.T) {
	h := New()
	h.Record(at(0), Totals{Requests: 5, Errors: 5}, Totals{Requests: 50}, Evidence{})
	h.Record(at(1), Totals{Requests: 6, Errors: 6}, Totals{Requests: 80, Errors: 1}, Evidence{})
	got := h.Snapshot(at(1)).Samples
	want := []Sample{
		{T: at(0), Canary: Role{Requests: 5, Errors: 5}, Stable: Role{Requests: 50}},
		{T: at(1), Canary: Role{Requests: 1, Errors: 1}, Stable: Role{Requests: 30, Errors: 1}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("samples %+v, want %+v", got, want)
	}
}

func TestTheRingKeepsFifteenMinutes(t *testing.T) {
	tests := []struct {
		name      string
		recorded  int // samples at at(0), at(1), ...
		now       time.Time
		wantN     int
		wantFirst time.Time
	}{
		{"fewer than fit", 10, at(9), 10, at(0)},
		{"exactly full", Size, at(Size - 1), Size, at(0)},
		{"the oldest fall off", Size + 7, at(Size + 6), Size, at(7)},
		{"samples older than the span before now are left out", 20, at(19).Add(Span - 2*Interval), 2, at(18)},
		{"a daemon that stopped sampling long ago shows nothing", 20, at(19).Add(time.Hour), 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			for i := range tt.recorded {
				h.Record(at(i), Totals{Requests: uint64(i)}, Totals{}, Evidence{})
			}
			s := h.Snapshot(tt.now)
			if len(s.Samples) != tt.wantN {
				t.Fatalf("%d samples, want %d", len(s.Samples), tt.wantN)
			}
			if tt.wantN > 0 && !s.Samples[0].T.Equal(tt.wantFirst) {
				t.Errorf("first sample at %v, want %v", s.Samples[0].T, tt.wantFirst)
			}
			for i := 1; i < len(s.Samples); i++ {
				if !s.Samples[i].T.After(s.Samples[i-1].T) {
					t.Fatalf("samples out of order at %d: %v after %v", i, s.Samples[i].T, s.Samples[i-1].T)
				}
			}
		})
	}
}

func TestAClockThatWentBackDropsTheSamples(t *testing.T) {
	h := New()
	for i := range 5 {
		h.Record(at(i), Totals{Requests: uint64(10 * i)}, Totals{}, Evidence{})
	}
	back := at(0).Add(-time.Hour)
	h.Record(back, Totals{Requests: 45}, Totals{}, Evidence{})
	got := h.Snapshot(back).Samples
	if len(got) != 1 || !got[0].T.Equal(back) || got[0].Canary.Requests != 5 {
		t.Errorf("samples after the clock went back: %+v, want only the new one, with 5 requests", got)
	}
}

func TestMarksKeepTheLatest(t *testing.T) {
	tests := []struct {
		name      string
		marks     int
		wantN     int
		wantFirst string
	}{
		{"none", 0, 0, ""},
		{"a few", 3, 3, "mark 0"},
		{"beyond the bound the oldest go", MaxMarks + 5, MaxMarks, "mark 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			for i := range tt.marks {
				h.Mark(at(i), Step, 25, fmt.Sprintf("mark %d", i))
			}
			got := h.Snapshot(at(tt.marks)).Marks
			if len(got) != tt.wantN {
				t.Fatalf("%d marks, want %d", len(got), tt.wantN)
			}
			if tt.wantN > 0 && got[0].Text != tt.wantFirst {
				t.Errorf("oldest mark %q, want %q", got[0].Text, tt.wantFirst)
			}
		})
	}
}

func TestAMarkNeverCarriesANonNumber(t *testing.T) {
	h := New()
	var nan float64
	nan = nan / nan
	h.Mark(t0, Rollback, nan, "rolled back")
	h.Mark(t0, Promote, 100.04, "promoted")
	got := h.Snapshot(t0).Marks
	if got[0].Percent != 0 || got[1].Percent != 100 {
		t.Errorf("percents %v and %v, want 0 and 100", got[0].Percent, got[1].Percent)
	}
	if _, err := json.Marshal(h.Snapshot(t0)); err != nil {
		t.Errorf("the snapshot does not encode: %v", err)
	}
}

func TestSnapshotEncodesAsThePageReadsIt(t *testing.T) {
	h := New()
	h.Record(t0.Add(300*time.Millisecond), Totals{Requests: 4, Errors: 1, P99: 12 * time.Millisecond}, Totals{Requests: 40, P99: 3 * time.Millisecond}, Evidence{})
	h.Mark(t0.Add(2*time.Second), Rollback, 0, "rolled back by the button")
	b, err := json.Marshal(h.Snapshot(t0.Add(Interval)))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"interval_s":5,"now":"2026-12-01T10:00:05Z",` +
		`"samples":[{"t":"2026-12-01T10:00:00Z","canary":{"requests":4,"errors":1,"p99_ms":12},"stable":{"requests":40,"errors":0,"p99_ms":3},"evidence":{"errors":0,"latency":0}}],` +
		`"marks":[{"t":"2026-12-01T10:00:02Z","kind":"rollback","percent":0,"text":"rolled back by the button"}]}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	empty, _ := json.Marshal(New().Snapshot(t0))
	if !strings.Contains(string(empty), `"samples":[],"marks":[]`) {
		t.Errorf("an empty history encodes as %s: want empty arrays, not null", empty)
	}
}

func TestSnapshotsAreTheCallersToKeep(t *testing.T) {
	h := New()
	h.Mark(t0, Step, 5, "step 1")
	s := h.Snapshot(t0)
	for i := range MaxMarks {
		h.Mark(t0, Step, 5, fmt.Sprintf("later %d", i))
	}
	if s.Marks[0].Text != "step 1" {
		t.Errorf("a snapshot's mark changed under it: %q", s.Marks[0].Text)
	}
}

func TestConcurrentUseIsSafe(t *testing.T) {
	h := New()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				now := at(i)
				switch g {
				case 0:
					h.Record(now, Totals{Requests: uint64(i)}, Totals{}, Evidence{})
				case 1:
					h.Mark(now, Step, 1, "step")
				default:
					_ = h.Snapshot(now)
				}
			}
		})
	}
	wg.Wait()
}
