package panel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/gpio/led"
	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

const (
	// BlinkPeriod is how long a blinking light stays lit, then dark.
	BlinkPeriod = 250 * time.Millisecond

	// softShort is how long Press holds the button for a short press: well
	// past Settle, about as long as a finger's tap.
	softShort = 100 * time.Millisecond
	// softLongExtra is how long past LongPress Press holds for a long press.
	softLongExtra = 100 * time.Millisecond
)

// Pins are the parts of a panel as periph pins. A nil pin is a part that is
// not wired: that LED stays dark, and without a button only Press presses.
type Pins struct {
	StatusLED   gpio.PinOut // green
	CanaryGreen gpio.PinOut
	CanaryRed   gpio.PinOut
	Button      gpio.PinIn // a push button to ground: active low, internal pull-up
}

// Wiring names the header pins of each part, as periph and the [gpio]
// config section name them ("GPIO17"); "" is a part that is not wired. Its
// fields are config.GPIO's, so that one converts to the other.
type Wiring struct {
	StatusLED   string
	CanaryGreen string
	CanaryRed   string
	Button      string
}

// Options tune a panel. The zero value is right for canaryd.
type Options struct {
	// Clock times the debouncer, the blinker, Press and the button's polling; nil is the real
	// clock. It is clockwork's, as are the simulated pins' and the fake
	// pins of periph's test package, so a test moves them all with one
	// fake clock.
	Clock clockwork.Clock
	// Logger gets the panel's rare complaints; nil is slog.Default().
	Logger *slog.Logger
	// ACT is a sysfs LED directory (see ACTLED) that mirrors the status LED;
	// "" leaves the Pi's own LEDs alone.
	ACT string

	// idle is called each time the panel's loop is about to wait, so that
	// tests know when it has caught up with the fake clock and the pins.
	idle func()
}

// logger is the panel's logger: slog.Default() unless Logger is set.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Front is a Panel on periph pins: a Raspberry Pi's header (Open) or
// simulated ones (NewSim). One goroutine debounces the button and blinks the
// lights on one timer; another waits for the button pin's edges.
type Front struct {
	mode  string
	clock clockwork.Clock
	log   *slog.Logger
	idle  func()

	// drive presses (true) or releases the button for Press: on simulated
	// pins it moves the button pin, on a Pi it goes into the debouncer
	// beside the pin's level.
	drive func(ctx context.Context, down bool) error

	button  gpio.PinIn
	edges   chan gpio.Level // a simulated button's edges, to end its wait at Close
	act     *sysLED
	leds    []*lamp
	presses chan Press
	samples chan buttonLevel // the button pin's level, from watch
	soft    chan bool        // a software press on a Pi
	kick    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	pressing chan struct{} // one Press at a time
	// releasedAt is when the last Press let the button go, under the
	// pressing token: the next waits for that release to settle.
	releasedAt time.Time

	// mu guards the lights and the pins under them, and what follows.
	mu             sync.Mutex
	status, canary light
	turn           uint      // the blinker's turn: blinking lights are lit at 0
	blinkAt        time.Time // the blinker's next turn; zero when nothing blinks
	wakeAt         time.Time // when the loop will next wake by itself, for tests
	pending        *softPress
	closed         bool
}

// softPress is a Press call waiting for its press to be delivered.
type softPress struct {
	long bool
	done func()
}

// newFront sets the pins up and starts the panel: the LEDs dark, the button
// an input with its pull-up and edge detection. names are the pins' names
// in errors, the pin's own name where one is empty. simulated: Press moves
// the button pin itself (its Edges), as a finger would; else a software
// press goes into the debouncer beside the pin's level.
func newFront(pins Pins, names Wiring, opts Options, mode string, simulated bool) (*Front, error) {
	f := newDark(opts, mode)
	if err := f.claimLEDs(pins, names); err != nil {
		return nil, err
	}
	if err := f.claimButton(pins.Button, names.Button); err != nil {
		return nil, err
	}
	f.mirrorACT(opts.ACT)
	f.drive = f.driveSoft
	if simulated && f.edges != nil {
		f.drive = f.driveEdges
	}
	f.start()
	return f, nil
}

// newDark is a panel with no pins yet, nothing lit and nothing running.
func newDark(opts Options, mode string) *Front {
	f := &Front{
		mode:     mode,
		clock:    opts.Clock,
		log:      opts.logger(),
		idle:     opts.idle,
		presses:  make(chan Press, 8),
		samples:  make(chan buttonLevel),
		soft:     make(chan bool),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		pressing: make(chan struct{}, 1),
		status:   light{pattern: led.Off},
		canary:   light{pattern: led.Off},
	}
	if f.clock == nil {
		f.clock = clockwork.NewRealClock()
	}
	return f
}

// claimLEDs takes the LEDs' lines as outputs, dark; on a failure it hands
// back those it took.
func (f *Front) claimLEDs(pins Pins, names Wiring) error {
	outs := []struct {
		key, name string
		pin       gpio.PinOut
		to        *[]*lamp
	}{
		{"status_led", names.StatusLED, pins.StatusLED, &f.status.green},
		{"canary_green", names.CanaryGreen, pins.CanaryGreen, &f.canary.green},
		{"canary_red", names.CanaryRed, pins.CanaryRed, &f.canary.red},
	}
	for _, o := range outs {
		if o.pin == nil {
			continue
		}
		l := &lamp{name: "gpio." + o.key, pin: o.pin}
		// Out claims the line, so a busy pin fails here and not at the
		// first Show; it also darkens an LED a crashed run left lit.
		if err := o.pin.Out(gpio.Low); err != nil {
			f.release()
			return pinError(o.key, nameOr(o.name, o.pin.Name()), o.pin, err)
		}
		f.leds = append(f.leds, l)
		*o.to = append(*o.to, l)
	}
	return nil
}

// claimButton takes the button's line as an input with its pull-up and
// edge detection; none (nil) is a panel without a button.
func (f *Front) claimButton(button gpio.PinIn, name string) error {
	if button == nil {
		return nil
	}
	if err := button.In(gpio.PullUp, gpio.BothEdges); err != nil {
		f.release()
		closePin(button)
		return pinError("button", nameOr(name, button.Name()), button, err)
	}
	f.button = button
	f.edges = edgesOf(button)
	return nil
}

// edgesOf is the channel that moves a simulated button pin, nil for a real
// one: a simulated pin's wait for an edge ends at Close by an edge on it,
// a real pin's at watchPoll.
func edgesOf(p gpio.PinIn) chan gpio.Level {
	if s, ok := p.(interface{ Edges() chan gpio.Level }); ok {
		return s.Edges()
	}
	return nil
}

// mirrorACT makes the Pi's ACT LED (a sysfs LED directory; "" for none)
// mirror the status LED, when canaryd may drive it.
func (f *Front) mirrorACT(dir string) {
	if dir == "" {
		return
	}
	act, err := openSysLED(dir)
	if err != nil {
		f.log.Info("the Pi's ACT LED does not mirror the status LED", "error", err.Error())
		return
	}
	f.act = act
	l := &lamp{name: "ACT LED", pin: act}
	l.write(false, f.log)
	f.leds = append(f.leds, l)
	f.status.green = append(f.status.green, l)
}

// start starts the panel's loop, and the watcher of the button's edges.
func (f *Front) start() {
	down := f.button != nil && f.button.Read() == gpio.Low
	deb := newDebouncer(down, f.clock.Now())
	f.wg.Add(1)
	go f.run(deb, down)
	if f.button != nil {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			watch(f.button, down, f.samples, f.stop, f.clock)
		}()
	}
}

func nameOr(name, fallback string) string {
	if name != "" {
		return name
	}
	return fallback
}

// run is the panel's loop: it feeds the debouncer, delivers presses and
// turns the blinker, waking on one timer for the next of the debouncer's
// deadlines and the blinker's turn. Nothing wakes it while the lights are
// steady and the button is untouched.
func (f *Front) run(deb debouncer, pinDown bool) {
	defer f.wg.Done()
	softDown := false
	pinVia := ViaEdge
	wake := f.clock.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		next := earliest(deb.next(), f.blinkNext())
		// Drained as well as stopped: a fake clock's timer keeps a tick
		// that fired while the loop was busy, and a stale tick would be
		// a spurious turn of the loop.
		wake.Stop()
		select {
		case <-wake.Chan():
		default:
		}
		if !next.IsZero() {
			wake.Reset(f.clock.Until(next))
		}
		f.mu.Lock()
		f.wakeAt = next
		f.mu.Unlock()
		if f.idle != nil {
			f.idle()
		}
		select {
		case <-f.stop:
			return
		case s := <-f.samples:
			pinDown, pinVia = s.down, s.via
		case softDown = <-f.soft:
		case <-f.kick:
		case <-wake.Chan():
		}
		now := f.clock.Now()
		short, long := deb.update(pinDown || softDown, now)
		via := pinVia
		if !pinDown {
			via = ViaSoftware
		}
		if short {
			f.deliver(Press{Via: via})
		}
		if long {
			f.deliver(Press{Long: true, Via: via})
		}
		f.blink(now)
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// deliver hands a press to the appliance, with the Handled of the software
// press it answers. It never blocks the loop: a full queue means nobody
// has taken eight presses, and the lights must keep blinking meanwhile.
func (f *Front) deliver(p Press) {
	f.mu.Lock()
	if f.pending != nil && f.pending.long == p.Long {
		p.done, f.pending = f.pending.done, nil
	}
	f.mu.Unlock()
	select {
	case f.presses <- p:
	default:
		f.log.Warn("a button press was dropped: the appliance is not taking presses", "LONG", p.Long)
	}
}

func (f *Front) blinkNext() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blinkAt
}

// blink turns the blinker when its time has come, and starts or stops it as
// the lights need it.
func (f *Front) blink(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed || !(f.status.blinks() || f.canary.blinks()):
		f.blinkAt = time.Time{}
	case f.blinkAt.IsZero():
		f.blinkAt = now.Add(BlinkPeriod) // Show lit it already
	case !now.Before(f.blinkAt):
		f.turn++
		f.showLocked()
		f.blinkAt = f.blinkAt.Add(BlinkPeriod)
		if !f.blinkAt.After(now) { // the loop was late: blink on from now
			f.blinkAt = now.Add(BlinkPeriod)
		}
	}
}

func (f *Front) showLocked() {
	f.status.show(f.turn, f.log)
	f.canary.show(f.turn, f.log)
}

// Show sets what the lights show. Steady patterns are on the pins when Show
// returns; a light that starts blinking starts lit, in step with any light
// already blinking.
func (f *Front) Show(status, canary led.Pattern) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	if !f.status.blinks() && !f.canary.blinks() {
		f.turn = 0
	}
	f.status.pattern, f.canary.pattern = status, canary
	f.showLocked()
	f.mu.Unlock()
	select { // the loop starts or stops the blinker
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Front) Presses() <-chan Press { return f.presses }

func (f *Front) Mode() string { return f.mode }

// Press presses the button from software and returns once the appliance
// handled the press, or ctx ended. It goes through the debouncer like a
// finger: the button is held down about 100 ms for a short press, and
// LongPress and a little for a long one, which first delivers a short press
// at Settle, as a finger's does. On simulated pins the button pin itself
// goes low; on a Pi the press joins the pin's level in the debouncer, as if
// a second button were wired beside the real one. Presses from software are
// taken one at a time.
func (f *Front) Press(ctx context.Context, long bool) error {
	select {
	case f.pressing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.pressing }()
	// A press right after the last one ended would come before that
	// release settled: the debouncer would take the two for one press
	// with a bounce in it, and this one would never be handled.
	if settled := f.releasedAt.Add(2 * Settle); !f.releasedAt.IsZero() && f.clock.Now().Before(settled) {
		t := f.clock.NewTimer(f.clock.Until(settled))
		defer t.Stop()
		select {
		case <-t.Chan():
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	handled := make(chan struct{})
	sp := &softPress{long: long, done: onceClose(handled)}
	f.mu.Lock()
	f.pending = sp
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.pending == sp {
			f.pending = nil
		}
		f.mu.Unlock()
	}()

	hold := softShort
	if long {
		hold = LongPress + softLongExtra
	}
	// The release is timed from the call, not from when the button went
	// down, so that it does not depend on how soon the pin was taken. The
	// timer starts before the press: its deadline is then fixed in one step
	// of the clock, where Until and then NewTimer would let a clock that
	// moved in between push the release later.
	timer := f.clock.NewTimer(hold)
	defer timer.Stop()
	if err := f.drive(ctx, true); err != nil {
		return err
	}
	select {
	case <-timer.Chan():
	case <-ctx.Done():
	}
	// The button goes up even when ctx ended: a button left down would
	// swallow every later press.
	if err := f.drive(context.WithoutCancel(ctx), false); err != nil {
		return err
	}
	f.releasedAt = f.clock.Now()
	select {
	case <-handled:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errClosed = errors.New("the front panel is closed")

// driveEdges is drive on simulated pins: the press moves the button pin.
func (f *Front) driveEdges(ctx context.Context, down bool) error {
	select {
	case f.edges <- gpio.Level(!down):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.stop:
		return errClosed
	}
}

// driveSoft is drive on a Pi: the press goes to the loop, not to a pin.
func (f *Front) driveSoft(ctx context.Context, down bool) error {
	select {
	case f.soft <- down:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.stop:
		return errClosed
	}
}

// Close darkens the LEDs, stops the goroutines and releases the pins. A
// Show after Close changes nothing.
func (f *Front) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.status.pattern, f.canary.pattern = led.Off, led.Off
	f.mu.Unlock()
	close(f.stop)
	stopped := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(stopped)
	}()
	// The watcher sees stop when its wait ends: at watchPoll at the
	// latest, at once on a simulated pin, which takes an edge (a nil
	// channel for a real pin: never ready).
	for waiting := true; waiting; {
		select {
		case <-stopped:
			waiting = false
		case f.edges <- gpio.High:
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Written whatever we remember: off must be off when canaryd stops.
	for _, l := range f.leds {
		l.write(false, f.log)
	}
	var err error
	if f.act != nil {
		err = f.act.restore()
	}
	return errors.Join(err, f.release())
}

// release hands the lines back to the kernel, for the next run or another
// program.
func (f *Front) release() error {
	var errs []error
	for _, l := range f.leds {
		errs = append(errs, closePin(l.pin))
	}
	if f.button != nil {
		errs = append(errs, closePin(f.button))
	}
	return errors.Join(errs...)
}

// closePin releases a pin that can be released: periph's character-device
// lines have Close(); other pins have nothing to release.
func closePin(p any) error {
	switch c := p.(type) {
	case interface{ Close() }:
		c.Close()
	case io.Closer:
		return c.Close()
	}
	return nil
}

// pinError is a pin that cannot be set up, named as the config names it.
func pinError(key, name string, pin any, err error) error {
	if isBusy(err) {
		by := ""
		if c, ok := pin.(interface{ Consumer() string }); ok && c.Consumer() != "" {
			by = fmt.Sprintf(" by %q", c.Consumer())
		}
		return fmt.Errorf("gpio.%s: %s: pin busy: in use%s (gpioinfo shows who holds it)", key, name, by)
	}
	return fmt.Errorf("gpio.%s: %s: %w", key, name, err)
}
