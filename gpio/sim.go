package gpio

import (
	"context"

	"github.com/jonboulle/clockwork"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// simWiring is the simulated panel's pins, named as the contract's example
// config wires a Pi.
var simWiring = Wiring{StatusLED: "GPIO22", CanaryGreen: "GPIO27", CanaryRed: "GPIO17", Button: "GPIO23"}

// NewSim returns a panel on simulated pins (-gpio sim): gpiotest fakes
// driven by the same code as a Pi's header. Nobody sees the lights: the
// appliance's status shows what it set them to. Press moves the simulated
// button pin, which goes through the debouncer like a finger on a real one.
func NewSim(opts Options) *Front {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	out := func(n int, name string) *gpiotest.Pin {
		return &gpiotest.Pin{N: name, Num: n, Clock: opts.Clock}
	}
	button := out(23, simWiring.Button)
	// Unbuffered: an edge is taken by the watcher before Press goes on.
	button.EdgesChan = make(chan pgpio.Level)
	pins := Pins{
		StatusLED:   out(22, simWiring.StatusLED),
		CanaryGreen: out(27, simWiring.CanaryGreen),
		CanaryRed:   out(17, simWiring.CanaryRed),
		Button:      button,
	}
	f, err := newFront(pins, simWiring, opts, "sim")
	if err != nil {
		panic("gpio: simulated pins failed: " + err.Error()) // gpiotest pins do not fail
	}
	f.drive = func(ctx context.Context, down bool) error {
		select {
		case button.EdgesChan <- pgpio.Level(!down):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-f.stop:
			return errClosed
		}
	}
	return f
}
