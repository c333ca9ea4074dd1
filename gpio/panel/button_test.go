package panel

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

const ms = time.Millisecond

// sample is the button's level changing at a time after the start.
type sample struct {
	at   time.Duration
	down bool
}

// delivered is a press the debouncer delivered.
type delivered struct {
	at   time.Duration
	long bool
}

func (d delivered) String() string {
	if d.long {
		return fmt.Sprintf("long@%v", d.at)
	}
	return fmt.Sprintf("short@%v", d.at)
}

// debounce runs a debouncer as the panel's loop does: at each sample, and
// at each deadline the debouncer names, until the end.
func debounce(downAtStart bool, samples []sample, end time.Duration) []delivered {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := newDebouncer(downAtStart, t0)
	down := downAtStart
	var out []delivered
	for {
		at, isSample := end, false
		if len(samples) > 0 && samples[0].at <= at {
			at, isSample = samples[0].at, true
		}
		if next := d.next(); !next.IsZero() && next.Sub(t0) < at {
			at, isSample = next.Sub(t0), false
		}
		if isSample {
			down, samples = samples[0].down, samples[1:]
		}
		short, long := d.update(down, t0.Add(at))
		if short {
			out = append(out, delivered{at: at})
		}
		if long {
			out = append(out, delivered{at: at, long: true})
		}
		if at >= end {
			return out
		}
	}
}

// bounces is a contact bouncing: the level flips every step from start,
// count times, ending on the level it started with.
func bounces(start time.Duration, step time.Duration, count int, down bool) []sample {
	var s []sample
	for i := range count {
		s = append(s, sample{start + time.Duration(i)*step, down == (i%2 == 0)})
	}
	if count%2 == 0 { // end on the level the storm is heading to
		s = append(s, sample{start + time.Duration(count)*step, down})
	}
	return s
}

func TestDebouncer(t *testing.T) {
	tests := []struct {
		name    string
		heldAt0 bool
		samples []sample
		end     time.Duration
		want    []delivered
	}{
		{"a clean press counts once it has settled, before the release",
			false, []sample{{10 * ms, true}, {200 * ms, false}}, time.Second,
			[]delivered{{40 * ms, false}}},
		{"a storm of bounces is one press, from the last bounce",
			false, slices.Concat(bounces(10*ms, 2*ms, 9, true), []sample{{500 * ms, false}}), time.Second,
			[]delivered{{26*ms + Settle, false}}},
		{"bounces at the release are no second press",
			false, slices.Concat([]sample{{10 * ms, true}}, bounces(300*ms, 3*ms, 7, false)), time.Second,
			[]delivered{{40 * ms, false}}},
		{"a tap shorter than Settle is no press",
			false, []sample{{10 * ms, true}, {10*ms + Settle - time.Microsecond, false}}, time.Second,
			nil},
		{"a contact that never holds still is no press",
			false, bounces(10*ms, 20*ms, 40, true)[:40], time.Second,
			nil},
		{"holding on delivers a long press at LongPress from the first contact",
			false, []sample{{100 * ms, true}, {5 * time.Second, false}}, 6 * time.Second,
			[]delivered{{130 * ms, false}, {100*ms + LongPress, true}}},
		{"released before LongPress is a short press only",
			false, []sample{{100 * ms, true}, {100*ms + LongPress - ms, false}}, 6 * time.Second,
			[]delivered{{130 * ms, false}}},
		{"a bounce open at the LongPress mark delays the long press",
			false, []sample{{0, true}, {LongPress - 5*ms, false}, {LongPress + 10*ms, true}}, 5 * time.Second,
			[]delivered{{Settle, false}, {LongPress + 10*ms, true}}},
		{"a release that settles just before LongPress cancels the long press",
			false, []sample{{0, true}, {LongPress - Settle - ms, false}, {LongPress + 10*ms, true}}, 5 * time.Second,
			[]delivered{{Settle, false}, {LongPress + 10*ms + Settle, false}}},
		{"two taps with a settled release between are two presses",
			false, []sample{{0, true}, {100 * ms, false}, {100*ms + Settle + ms, true}, {300 * ms, false}}, time.Second,
			[]delivered{{Settle, false}, {100*ms + 2*Settle + ms, false}}},
		{"a release shorter than Settle does not end the press",
			false, []sample{{0, true}, {100 * ms, false}, {100*ms + Settle - ms, true}, {300 * ms, false}}, time.Second,
			[]delivered{{Settle, false}}},
		{"a button down at the start counts only after a release",
			true, []sample{{time.Second, false}, {2 * time.Second, true}}, 6 * time.Second,
			[]delivered{{2*time.Second + Settle, false}, {2*time.Second + LongPress, true}}},
		{"a button stuck down from the start is never a press",
			true, nil, 10 * time.Second,
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := debounce(tt.heldAt0, tt.samples, tt.end)
			if !slices.Equal(got, tt.want) {
				t.Errorf("delivered %v, want %v", got, tt.want)
			}
		})
	}
}

// A late look (the loop was busy past both deadlines) still delivers the
// short press before the long one.
func TestDebouncerLateLookDeliversBoth(t *testing.T) {
	t0 := time.Now()
	d := newDebouncer(false, t0)
	d.update(true, t0)
	short, long := d.update(true, t0.Add(LongPress+time.Second))
	if !short || !long {
		t.Fatalf("short %v long %v, want both", short, long)
	}
	if !d.next().IsZero() {
		t.Errorf("next = %v with nothing pending, want zero", d.next())
	}
}

// poller runs watch on a button pin that raises no edges, as an emulated
// Pi's does: only reads of its level can see a press.
type poller struct {
	t      *testing.T
	clock  *clockwork.FakeClock
	pin    *gpiotest.Pin
	levels chan buttonLevel
}

func newPoller(t *testing.T) *poller {
	clock := clockwork.NewFakeClockAt(t0)
	p := &poller{t: t, clock: clock, pin: &gpiotest.Pin{N: "GPIO23", L: gpio.High, Clock: clock},
		levels: make(chan buttonLevel, 16)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); watch(p.pin, false, p.levels, stop, clock) }()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("the watcher does not wait for an edge")
	}
	t.Cleanup(func() {
		close(stop)
		clock.Advance(watchPoll)
		<-done
	})
	return p
}

// wait lets the watcher's next wait for an edge run out after d, with the
// button's level at l, and returns what the watcher reported by then.
func (p *poller) wait(d time.Duration, l gpio.Level) []buttonLevel {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	p.pin.Lock()
	p.pin.L = l
	p.pin.Unlock()
	p.clock.Advance(d)
	// Waiting again means it has reported what it read.
	if err := p.clock.BlockUntilContext(ctx, 1); err != nil {
		p.t.Fatal("the watcher did not wait again after its wait ran out")
	}
	var got []buttonLevel
	for {
		select {
		case s := <-p.levels:
			got = append(got, s)
		default:
			return got
		}
	}
}

func TestWithoutEdgesATapOneReadCaughtIsReadReleasedBeforeItSettles(t *testing.T) {
	p := newPoller(t)
	if got := p.wait(watchPoll, gpio.Low); !slices.Equal(got, []buttonLevel{{down: true, via: ViaPoll}}) {
		t.Fatalf("after a wait of watchPoll with the button down: %v, want it read down by polling", got)
	}
	// The finger is already off: the next read comes within Settle, so the
	// debouncer sees a tap, not a press.
	if got := p.wait(pollFast, gpio.High); !slices.Equal(got, []buttonLevel{{down: false, via: ViaPoll}}) {
		t.Fatalf("pollFast later, the button up: %v, want it read up", got)
	}
	if pollFast >= Settle {
		t.Fatalf("pollFast %v is not shorter than Settle %v", pollFast, Settle)
	}
	deb := debounce(false, []sample{{watchPoll, true}, {watchPoll + pollFast, false}}, time.Second)
	if deb != nil {
		t.Errorf("the tap as the poller saw it delivered %v, want nothing", deb)
	}
}

func TestWithoutEdgesAHeldButtonIsReadEveryPollFastUntilReleased(t *testing.T) {
	p := newPoller(t)
	var seen []buttonLevel
	seen = append(seen, p.wait(watchPoll, gpio.Low)...)
	// Read every pollFast while held; nothing new to report.
	for range 10 {
		seen = append(seen, p.wait(pollFast, gpio.Low)...)
	}
	seen = append(seen, p.wait(pollFast, gpio.High)...)
	want := []buttonLevel{{down: true, via: ViaPoll}, {down: false, via: ViaPoll}}
	if !slices.Equal(seen, want) {
		t.Fatalf("reported %v, want %v", seen, want)
	}
	// Long after the last change the watcher is back to waiting watchPoll.
	p.wait(pollFastFor, gpio.High)
	if got := p.wait(pollFast, gpio.Low); got != nil {
		t.Errorf("read again pollFast after a quiet %v: %v, want the next read at watchPoll", pollFastFor, got)
	}
}
