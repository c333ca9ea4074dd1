package panel

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

// simBench is the bench over NewSim's own pins.
func simBench(t *testing.T) *bench {
	b := &bench{t: t, clock: clockwork.NewFakeClockAt(t0), steps: make(chan struct{}, 1024)}
	b.f = NewSim(Options{Clock: b.clock, idle: func() { b.steps <- struct{}{} }})
	b.button = b.f.button.(*simPin)
	t.Cleanup(func() { b.close() })
	b.step()
	return b
}

// pressAsync starts a software press; its result comes on the channel.
func pressAsync(ctx context.Context, f *Front, long bool) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.Press(ctx, long) }()
	return done
}

func returned(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(patience):
		t.Fatal("Press did not return")
		return nil
	}
}

func pending(done <-chan error) bool {
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func TestSimPressGoesThroughTheDebouncer(t *testing.T) {
	b := simBench(t)
	done := pressAsync(context.Background(), b.f, false)
	b.step() // the simulated button pin went low
	if b.button.Read() != gpio.Low {
		t.Fatal("the simulated button pin is not down")
	}
	b.advance(Settle - time.Microsecond)
	b.noPress()
	b.advance(time.Microsecond)
	p := b.press()
	if p.Long {
		t.Fatal("a short software press delivered as long")
	}
	b.advance(softShort - Settle) // the finger comes off
	b.step()
	if !pending(done) {
		t.Fatal("Press returned before its press was handled")
	}
	p.Handled()
	if err := returned(t, done); err != nil {
		t.Fatal(err)
	}
	if b.button.Read() != gpio.High {
		t.Error("the simulated button is left down")
	}
}

func TestSimLongPressIsShortThenLong(t *testing.T) {
	b := simBench(t)
	done := pressAsync(context.Background(), b.f, true)
	b.step()
	b.advance(Settle)
	b.press().Handled() // the rollback at the debounced edge
	if !pending(done) {
		t.Fatal("a long Press returned at its short press")
	}
	b.advance(LongPress - Settle)
	p := b.press()
	if !p.Long {
		t.Fatal("no long press at LongPress")
	}
	p.Handled()
	b.advance(softLongExtra)
	b.step()
	if err := returned(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestSimPressThatNobodyHandlesEndsWithItsContext(t *testing.T) {
	b := simBench(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := pressAsync(ctx, b.f, false)
	b.step()
	b.advance(softShort)
	b.step()
	b.press() // delivered, never handled
	cancel()
	if err := returned(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Press returned %v, want %v", err, context.Canceled)
	}
	if b.button.Read() != gpio.High {
		t.Error("the simulated button is left down")
	}
}

// In real time, as canaryctl button uses it: the press is handled and Press
// returns about softShort later.
func TestSimPressInRealTime(t *testing.T) {
	f := NewSim(Options{})
	defer f.Close()
	go func() {
		for p := range f.Presses() {
			p.Handled()
		}
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := f.Press(ctx, false); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < softShort {
		t.Errorf("Press returned after %v, before the button was released", d)
	}
}

// On a Pi, a software press goes into the same debouncer as the pin; it
// works without a button wired, too.
func TestSoftPressWithoutAButtonPin(t *testing.T) {
	b := newBench(t, func(p *Pins, _ *Options) { p.Button = nil })
	done := pressAsync(context.Background(), b.f, false)
	b.step()
	b.advance(Settle)
	b.press().Handled()
	b.advance(softShort - Settle)
	b.step()
	if err := returned(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestSimIsNamedSim(t *testing.T) {
	f := NewSim(Options{})
	defer f.Close()
	if f.Mode() != "sim" {
		t.Errorf("Mode %q", f.Mode())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.leds {
		if l.pin.(gpio.PinIn).Read() == gpio.High {
			t.Errorf("a new panel lights %s", l.name)
		}
	}
}

func TestOpenOffAPiNamesThePin(t *testing.T) {
	if HasChip() {
		t.Skip("this machine has GPIO chips")
	}
	_, err := Open(Wiring{StatusLED: "GPIO22", Button: "GPIO23"}, Options{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v, want ErrNotFound", err)
	}
	want := "gpio.status_led: GPIO22: pin not found (is this a Raspberry Pi? -gpio sim simulates the panel)"
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Error("the error is not one line")
	}
}

func TestOpenWithNothingWiredStillPresses(t *testing.T) {
	f, err := Open(Wiring{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Mode() != "periph" {
		t.Errorf("Mode %q", f.Mode())
	}
	go func() {
		for p := range f.Presses() {
			p.Handled()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := f.Press(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// Two presses one right after the other, as two canaryctl commands give
// them, are two presses: the second waits for the first's release to
// settle rather than be taken for a bounce of it.
func TestSimPressesBackToBackAreEachHandled(t *testing.T) {
	f := NewSim(Options{})
	defer f.Close()
	var handled atomic.Int32
	go func() {
		for p := range f.Presses() {
			handled.Add(1)
			p.Handled()
		}
	}()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		err := f.Press(ctx, false)
		cancel()
		if err != nil {
			t.Fatalf("press %d: %v", i+1, err)
		}
	}
	if n := handled.Load(); n != 3 {
		t.Errorf("%d presses handled, want 3", n)
	}
}
