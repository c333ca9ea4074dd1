// Package panel is the appliance's front panel: a status LED, the canary
// light and the rollback button, on a Raspberry Pi's header pins or on
// simulated ones. The appliance asks for a Panel and never learns which.
//
// The panel is built like periph itself: the lights and the button are
// written against periph's pin interfaces (periph.io/x/conn/v3/gpio), so one
// debouncer and one blinker drive the character-device lines of a real Pi
// (Open), the simulated lines of -gpio sim (NewSim), and the fake pins of
// periph's test package in the tests.
package panel

import (
	"context"
	"errors"
	"sync"

	"github.com/canary-pi/canary-pi/gpio/led"
)

// Press is one debounced press of the button. A short press is delivered
// the moment the button is confirmed down, not when it is released: a
// rollback must not wait for the finger. Holding the button on delivers a
// second, long press when it has been down LongPress.
type Press struct {
	Long bool   // held LongPress or more
	Via  string // how the press was seen: ViaEdge, ViaPoll or ViaSoftware

	done func() // tells a software press it was handled; nil for a finger's press
}

// Handled tells a software press (Panel.Press) that the appliance has acted
// on it, so that `canaryctl button` returns with the effect in place. It may
// be called more than once.
func (p Press) Handled() {
	if p.done != nil {
		p.done()
	}
}

// Panel is the lights and the button.
type Panel interface {
	// Show sets what the status LED and the canary light show.
	Show(status, canary led.Pattern)
	// Presses delivers the button's debounced presses. It is never closed.
	Presses() <-chan Press
	// Press presses the button from software, through the same path as a
	// finger on it, and returns once the press was handled or ctx ended.
	Press(ctx context.Context, long bool) error
	// Mode names the implementation for the status: "periph", "sim", "off".
	Mode() string
	// Close turns the lights off and releases the pins.
	Close() error
}

// Absent is the panel of an appliance run without GPIO (-gpio off):
// nothing lights and there is no button to press.
type Absent struct{}

func (Absent) Show(status, canary led.Pattern) {}
func (Absent) Presses() <-chan Press           { return nil }
func (Absent) Mode() string                    { return "off" }
func (Absent) Close() error                    { return nil }
func (Absent) Press(context.Context, bool) error {
	return errors.New("there is no button: canaryd runs with -gpio off")
}

// onceClose is a Handled function: closing ch at most once.
func onceClose(ch chan struct{}) func() {
	return sync.OnceFunc(func() { close(ch) })
}
