package panel

import (
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

const (
	// Settle is how long the button's level must hold still to count: a
	// contact bounces for a few milliseconds, a finger stays far longer.
	Settle = 30 * time.Millisecond
	// LongPress is how long the button is held for a long press (a resume).
	LongPress = 3 * time.Second

	// watchPoll bounds every wait for an edge, so that Close is noticed and
	// an edge the kernel dropped is caught by reading the level.
	watchPoll = 200 * time.Millisecond
	// pollFast is the wait after the level was seen changing without an
	// edge (a kernel or an emulator that raises none): a tap shorter than
	// Settle that one read caught must be read released before Settle ends,
	// or the debouncer would take it for a press.
	pollFast = Settle / 3
	// pollFastFor is how long the fast reads go on after such a change:
	// through a long press and its release.
	pollFastFor = LongPress + time.Second
)

// Ways the button's level was learnt, for Press.Via.
const (
	ViaEdge     = "edge"     // the kernel's edge event
	ViaPoll     = "poll"     // a read of the level, no edge having come
	ViaSoftware = "software" // Panel.Press: canaryctl button
)

// buttonLevel is the button pin's level, and how watch learnt it.
type buttonLevel struct {
	down bool
	via  string
}

// debouncer turns the button's raw level over time into presses. It is pure:
// it is fed samples with their time and says what is due, so its tests need
// neither pins nor goroutines.
//
// A press counts once the button has been down for Settle without a bounce;
// it is delivered then, while the finger is still on it. Staying down for
// LongPress from that press's first contact delivers a long press too. A
// release counts once the button has been up for Settle, and only then can
// a new press count: a storm of bounces is one press.
type debouncer struct {
	raw      bool      // down, as last sampled
	rawSince time.Time // when raw last changed
	down     bool      // down, debounced
	downAt   time.Time // when the debounced press began
	longDone bool      // no long press is due for this press
}

// newDebouncer starts from the level read when the button was set up. A
// button already down then (held, or a short to ground) delivers nothing
// until it has been released: a stuck button must not roll back at every
// start.
func newDebouncer(down bool, now time.Time) debouncer {
	return debouncer{raw: down, rawSince: now, down: down, downAt: now, longDone: down}
}

// update takes the level sampled at now and returns the presses due.
func (d *debouncer) update(down bool, now time.Time) (short, long bool) {
	if down != d.raw {
		d.raw, d.rawSince = down, now
	}
	if d.raw != d.down && now.Sub(d.rawSince) >= Settle {
		d.down = d.raw
		if d.down {
			d.downAt, d.longDone, short = d.rawSince, false, true
		}
	}
	// A bounce that is open right at the LongPress mark delays the long
	// press until contact is back; a release that holds cancels it.
	if d.down && d.raw && !d.longDone && now.Sub(d.downAt) >= LongPress {
		d.longDone, long = true, true
	}
	return short, long
}

// next is when update has something to decide without a new sample: the
// end of a Settle, or the LongPress mark. It is zero when nothing is pending.
func (d *debouncer) next() time.Time {
	switch {
	case d.raw != d.down:
		return d.rawSince.Add(Settle)
	case d.down && !d.longDone:
		return d.downAt.Add(LongPress)
	}
	return time.Time{}
}

// watch reports the button pin's level after each of its edges, and after a
// wait in which the level changed without an edge the kernel told of. It
// waits in steps of watchPoll at most: periph's WaitForEdge cannot be
// stopped reliably from outside, so the loop looks at stop between waits.
// A change seen without an edge makes it read every pollFast for a while.
func watch(pin gpio.PinIn, down bool, out chan<- buttonLevel, stop <-chan struct{}, clock clockwork.Clock) {
	var polled time.Time // when a change was last seen without an edge
	for {
		wait := watchPoll
		if !polled.IsZero() && clock.Since(polled) < pollFastFor {
			wait = pollFast
		}
		edge := pin.WaitForEdge(wait)
		select {
		case <-stop:
			return
		default:
		}
		now := pin.Read() == gpio.Low
		if !edge && now == down {
			continue
		}
		down = now
		s := buttonLevel{down: down, via: ViaEdge}
		if !edge {
			s.via, polled = ViaPoll, clock.Now()
		}
		select {
		case out <- s:
		case <-stop:
			return
		}
	}
}
