package panel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/gpio/led"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func TestPressIsDeliveredAtTheDebouncedEdge(t *testing.T) {
	b := newBench(t)
	b.edge(gpio.Low)
	b.advance(Settle - time.Microsecond)
	b.noPress()
	b.advance(time.Microsecond)
	if p := b.press(); p.Long || p.Via != ViaEdge {
		t.Fatalf("press %+v at Settle, want a short one seen by its edge", p)
	}
	if b.elapsed() != Settle {
		t.Errorf("delivered at %v, want %v: while the finger is still down", b.elapsed(), Settle)
	}
	b.advance(time.Second)
	b.edge(gpio.High)
	b.advance(time.Second)
	b.noPress()
}

func TestBounceStormIsOnePress(t *testing.T) {
	b := newBench(t)
	for i := range 9 { // a contact closing: low, high, low, ... low
		b.edge(gpio.Level(i%2 == 1))
		b.advance(2 * time.Millisecond)
	}
	b.advance(Settle)
	if p := b.press(); p.Long {
		t.Fatal("a storm delivered a long press")
	}
	b.advance(500 * time.Millisecond)
	for i := range 9 { // and opening: high, low, ... high
		b.edge(gpio.Level(i%2 == 0))
		b.advance(3 * time.Millisecond)
	}
	b.advance(time.Second)
	b.noPress()
}

func TestTapShorterThanSettleIsNoPress(t *testing.T) {
	b := newBench(t)
	b.edge(gpio.Low)
	b.advance(Settle - time.Millisecond)
	b.edge(gpio.High)
	b.advance(5 * time.Second)
	b.noPress()
}

func TestLongPressIsShortThenLongAtThreeSeconds(t *testing.T) {
	b := newBench(t)
	b.edge(gpio.Low)
	b.advance(Settle)
	if p := b.press(); p.Long {
		t.Fatal("first press is long")
	}
	b.advance(LongPress - Settle - time.Millisecond)
	b.noPress()
	b.advance(time.Millisecond)
	if p := b.press(); !p.Long {
		t.Fatal("second press is not long")
	}
	if b.elapsed() != LongPress {
		t.Errorf("long press at %v, want %v, with the button still down", b.elapsed(), LongPress)
	}
	b.advance(10 * time.Second) // held on: one long press per press
	b.edge(gpio.High)
	b.advance(time.Second)
	b.noPress()
}

// The panel reports presses; what they do is the latch's business. During a
// rollback a press is delivered like any other and the lights stay as the
// appliance set them: the red-blink of the latch, not the button, drives
// the canary light.
func TestPressDuringRollbackChangesNoLight(t *testing.T) {
	b := newBench(t)
	b.show(led.Green, led.RedBlink)
	for range 2 {
		b.edge(gpio.Low)
		b.advance(100 * time.Millisecond)
		b.edge(gpio.High)
		b.advance(100 * time.Millisecond)
		if p := b.press(); p.Long {
			t.Fatal("a tap delivered as long")
		}
		red := b.red.lit()
		b.advance(BlinkPeriod)
		if !b.status.lit() || b.green.lit() || b.red.lit() == red {
			t.Fatalf("after a press: status lit %v, green lit %v, red toggled %v; want green/red-blink",
				b.status.lit(), b.green.lit(), b.red.lit() != red)
		}
	}
}

func TestSteadyLightsDoNotWriteOrWake(t *testing.T) {
	b := newBench(t)
	b.show(led.Green, led.Green)
	if !b.status.lit() || !b.green.lit() || b.red.lit() {
		t.Fatalf("green/green shows status %v green %v red %v", b.status.lit(), b.green.lit(), b.red.lit())
	}
	writes := b.status.writes.Load() + b.green.writes.Load() + b.red.writes.Load()
	b.show(led.Green, led.Green) // the daemon shows its lights again at every reload
	b.advance(10 * time.Second)
	if now := b.status.writes.Load() + b.green.writes.Load() + b.red.writes.Load(); now != writes {
		t.Errorf("%d pin writes for steady lights, want none", now-writes)
	}
	if !b.wakeAt().IsZero() {
		t.Errorf("the loop wakes at %v with steady lights and an idle button", b.wakeAt())
	}
}

func TestBlinkingTogglesWithTheBlinker(t *testing.T) {
	b := newBench(t)
	b.show(led.Green, led.Red)
	b.show(led.Green, led.RedBlink)
	redWrites := b.red.writes.Load()
	statusWrites := b.status.writes.Load()
	var got []bool
	got = append(got, b.red.lit())
	for range 4 {
		b.advance(BlinkPeriod)
		got = append(got, b.red.lit())
	}
	if want := []bool{true, false, true, false, true}; !slices.Equal(got, want) {
		t.Errorf("red over five half periods: %v, want %v", got, want)
	}
	if n := b.red.writes.Load() - redWrites; n != 4 {
		t.Errorf("%d writes for four toggles", n)
	}
	if n := b.status.writes.Load() - statusWrites; n != 0 {
		t.Errorf("the steady status LED was written %d times while the canary blinked", n)
	}
	if b.green.lit() {
		t.Error("red-blink lights green")
	}
}

func TestBlinkingLightsBlinkInStep(t *testing.T) {
	b := newBench(t)
	b.show(led.Green, led.RedBlink)
	b.advance(BlinkPeriod) // red is dark now
	b.show(led.GreenBlink, led.RedBlink)
	if b.status.lit() || b.red.lit() {
		t.Fatalf("a light joining a blink is out of step: status %v red %v", b.status.lit(), b.red.lit())
	}
	b.advance(BlinkPeriod)
	if !b.status.lit() || !b.red.lit() {
		t.Fatalf("status %v red %v, want both lit", b.status.lit(), b.red.lit())
	}
	b.show(led.Green, led.Off) // nothing blinks: the blinker stops
	if !b.wakeAt().IsZero() {
		t.Errorf("the blinker still turns at %v", b.wakeAt())
	}
	b.show(led.Green, led.RedBlink) // and starts lit
	if !b.red.lit() {
		t.Error("a new blink starts dark")
	}
}

// A wink (the fleet out of reach) is lit three turns of the blinker and
// dark one: told apart from a blink, which is dark every other turn.
func TestAWinkIsDarkOneTurnInFour(t *testing.T) {
	b := newBench(t)
	b.show(led.GreenWink, led.Green)
	var seen []bool
	for range 8 {
		seen = append(seen, b.status.lit())
		b.advance(BlinkPeriod)
	}
	want := []bool{true, true, true, false, true, true, true, false}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("a winking status light over 8 turns: %v, want %v", seen, want)
	}
}

func TestUnwiredColourStaysDark(t *testing.T) {
	b := newBench(t, func(p *Pins, _ *Options) { p.CanaryRed = nil })
	b.show(led.Off, led.Red)
	b.advance(time.Second)
	if b.green.lit() {
		t.Error("a red verdict shows green on a light without its red LED")
	}
}

func TestCloseTurnsTheLightsOff(t *testing.T) {
	b := newBench(t)
	b.show(led.Green, led.RedBlink)
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	if b.status.lit() || b.green.lit() || b.red.lit() {
		t.Fatalf("lit after Close: status %v green %v red %v", b.status.lit(), b.green.lit(), b.red.lit())
	}
	writes := b.status.writes.Load()
	b.f.Show(led.Green, led.Green) // a reload racing the stop
	if b.status.writes.Load() != writes || b.status.lit() {
		t.Error("Show after Close drove a released pin")
	}
	if err := b.close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.f.Press(context.Background(), false); !errors.Is(err, errClosed) {
		t.Errorf("Press after Close: %v, want %v", err, errClosed)
	}
}

// busyPin is a line another program holds, as periph's ioctl driver
// reports it.
type busyPin struct{ *gpiotest.Pin }

func (busyPin) Out(gpio.Level) error {
	return errors.New("GPIOLine.Out(): line_request ioctl: device or resource busy")
}

func (busyPin) Consumer() string { return "gpio-leds" }

func TestBusyPinIsAnErrorNamingIt(t *testing.T) {
	pins := Pins{CanaryRed: busyPin{&gpiotest.Pin{N: "GPIO17", Num: 17}}}
	_, err := newFront(pins, Wiring{CanaryRed: "GPIO17"}, Options{}, "test", false)
	want := `gpio.canary_red: GPIO17: pin busy: in use by "gpio-leds" (gpioinfo shows who holds it)`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestACTLEDMirrorsTheStatusLED(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write("trigger", "none rc-feedback [mmc0] timer oneshot heartbeat")
	write("brightness", "0")
	b := newBench(t, func(_ *Pins, o *Options) { o.ACT = dir })
	if got := read("trigger"); got != "none" {
		t.Errorf("trigger while driven: %q, want none", got)
	}
	b.show(led.GreenBlink, led.Green)
	if got := read("brightness"); got != "1" {
		t.Errorf("brightness %q with the status lit", got)
	}
	b.advance(BlinkPeriod)
	if got := read("brightness"); got != "0" {
		t.Errorf("brightness %q in the dark half of a blink", got)
	}
	b.close()
	if got := read("trigger"); got != "mmc0" {
		t.Errorf("trigger after Close: %q, want mmc0 back", got)
	}
}

func TestACTLEDFailureIsLoggedOnce(t *testing.T) {
	b := newBench(t, func(_ *Pins, o *Options) { o.ACT = filepath.Join(t.TempDir(), "nope") })
	b.show(led.GreenBlink, led.Green)
	b.advance(time.Second)
	if n := strings.Count(b.logs.String(), "ACT LED"); n != 1 {
		t.Errorf("%d log lines about the ACT LED, want 1:\n%s", n, b.logs)
	}
	if !b.status.lit() && !b.green.lit() {
		t.Error("the panel does not work without the ACT LED")
	}
}

// TestPressLatency measures, in real time, how long a press takes from its
// debounced edge (the loop's timer firing at Settle) to its delivery on
// Presses: the panel's share of the button-to-rollback time. The daemon's
// share, an atomic switch of the router's mode, comes after.
func TestPressLatency(t *testing.T) {
	b := newBench(t)
	n := 200
	if testing.Short() {
		n = 20
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		b.edge(gpio.Low)
		b.advance(Settle - time.Microsecond)
		start := time.Now()
		b.clock.Advance(time.Microsecond)
		b.press()
		lat = append(lat, time.Since(start))
		b.step()
		b.edge(gpio.High)
		b.advance(Settle)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("debounced edge to Presses: p50 %v, p99 %v, max %v over %d presses", p50, p99, lat[len(lat)-1], n)
	if p50 > 5*time.Millisecond {
		t.Errorf("median %v from the debounced edge to the press; the budget for the whole rollback is 1ms", p50)
	}
}

func BenchmarkPressDelivery(bb *testing.B) {
	b := newBench(bb)
	var total time.Duration
	for bb.Loop() {
		b.edge(gpio.Low)
		b.advance(Settle - time.Microsecond)
		start := time.Now()
		b.clock.Advance(time.Microsecond)
		b.press()
		total += time.Since(start)
		b.step()
		b.edge(gpio.High)
		b.advance(Settle)
	}
	bb.ReportMetric(float64(total.Nanoseconds())/float64(bb.N), "ns/press")
}
