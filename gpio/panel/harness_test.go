package panel

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/gpio/led"
	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// patience bounds every wait on the panel's goroutines in real time; a test
// that needs it has hung.
const patience = 5 * time.Second

// outPin is a fake output pin that counts its writes.
type outPin struct {
	*gpiotest.Pin
	writes atomic.Int64
}

func (p *outPin) Out(l gpio.Level) error {
	p.writes.Add(1)
	return p.Pin.Out(l)
}

func (p *outPin) lit() bool { return p.Read() == gpio.High }

// edgedPin is a button pin whose edges the test moves.
type edgedPin interface {
	gpio.PinIn
	Edges() chan gpio.Level
}

// testButton is periph's fake pin as a button: the panel ends its wait
// for an edge at Close through Edges, as it does a simulated pin's.
type testButton struct{ *gpiotest.Pin }

func (b testButton) Edges() chan gpio.Level { return b.EdgesChan }

// bench is a panel on fake pins and a fake clock. Its helpers move the pins
// and the clock one step at a time and wait until the panel's loop has
// caught up, so no test sleeps and none races the loop.
type bench struct {
	t      testing.TB
	clock  *clockwork.FakeClock
	f      *Front
	status *outPin
	green  *outPin
	red    *outPin
	button edgedPin
	steps  chan struct{}
	logs   *testkit.SyncBuffer
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newBench(t testing.TB, tune ...func(*Pins, *Options)) *bench {
	t.Helper()
	clock := clockwork.NewFakeClockAt(t0)
	out := func(n int, name string) *outPin {
		return &outPin{Pin: &gpiotest.Pin{N: name, Num: n, Clock: clock}}
	}
	b := &bench{
		t:      t,
		clock:  clock,
		status: out(22, "GPIO22"),
		green:  out(27, "GPIO27"),
		red:    out(17, "GPIO17"),
		button: testButton{&gpiotest.Pin{N: "GPIO23", Num: 23, Clock: clock, EdgesChan: make(chan gpio.Level)}},
		steps:  make(chan struct{}, 1024),
		logs:   &testkit.SyncBuffer{},
	}
	pins := Pins{StatusLED: b.status, CanaryGreen: b.green, CanaryRed: b.red, Button: b.button}
	opts := Options{
		Clock:  clock,
		Logger: slog.New(slog.NewTextHandler(b.logs, nil)),
		idle:   func() { b.steps <- struct{}{} },
	}
	for _, f := range tune {
		f(&pins, &opts)
	}
	f, err := newFront(pins, Wiring{}, opts, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	b.f = f
	t.Cleanup(func() { b.close() })
	b.step() // the loop's first wait
	return b
}

// close closes the panel, in bounded time.
func (b *bench) close() error {
	done := make(chan error, 1)
	go func() { done <- b.f.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(patience):
		b.t.Fatal("Close hangs")
		return nil
	}
}

// step waits for one turn of the panel's loop.
func (b *bench) step() {
	b.t.Helper()
	select {
	case <-b.steps:
	case <-time.After(patience):
		b.t.Fatal("the panel's loop did not turn")
	}
}

// edge moves the button pin (Low is pressed) and waits until the panel has
// taken the new level.
func (b *bench) edge(l gpio.Level) {
	b.t.Helper()
	select {
	case b.button.Edges() <- l:
	case <-time.After(patience):
		b.t.Fatal("the button's watcher did not take the edge")
	}
	b.step()
}

// advance moves the clock by d, stopping at each moment the panel's loop
// wakes by itself to let it turn, so every deadline is met on time.
func (b *bench) advance(d time.Duration) {
	b.t.Helper()
	end := b.clock.Now().Add(d)
	for {
		next := b.wakeAt()
		if next.IsZero() || next.After(end) {
			break
		}
		b.clock.Advance(next.Sub(b.clock.Now()))
		b.step()
	}
	b.clock.Advance(end.Sub(b.clock.Now()))
}

// wakeAt is when the panel's loop will wake by itself; zero for never.
func (b *bench) wakeAt() time.Time {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	return b.f.wakeAt
}

// elapsed is the fake time since the bench started.
func (b *bench) elapsed() time.Duration { return b.clock.Since(t0) }

// show sets the lights and waits for the loop to have set the blinker.
func (b *bench) show(status, canary led.Pattern) {
	b.t.Helper()
	b.f.Show(status, canary)
	b.step()
}

// press is the next delivered press.
func (b *bench) press() Press {
	b.t.Helper()
	select {
	case p := <-b.f.Presses():
		return p
	case <-time.After(patience):
		b.t.Fatalf("no press delivered at %v", b.elapsed())
		return Press{}
	}
}

// noPress fails if a press is waiting. The helpers above leave the loop
// idle, so a press that is due has been delivered.
func (b *bench) noPress() {
	b.t.Helper()
	select {
	case p := <-b.f.Presses():
		b.t.Fatalf("unexpected press at %v (long: %v)", b.elapsed(), p.Long)
	default:
	}
}
