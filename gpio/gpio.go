// Package gpio is the appliance's front panel: a status LED, the canary
// light and the rollback button. The appliance asks for a Panel and never
// learns whether it drives header pins on a Pi or simulated ones.
package gpio

import "context"

// Pattern is what a light shows. The values are the contract's `leds`
// field values.
type Pattern string

const (
	Off        Pattern = "off"
	Green      Pattern = "green"
	GreenBlink Pattern = "green-blink"
	Red        Pattern = "red"
	RedBlink   Pattern = "red-blink"
)

// Press is one debounced press of the button.
type Press struct {
	Long bool // held 3 s or more

	handled chan struct{} // closed by Handled; nil for a finger's press
}

// Handled tells a software press (Panel.Press) that the appliance has acted
// on it, so that `canaryctl button` returns with the effect in place.
func (p Press) Handled() {
	if p.handled != nil {
		close(p.handled)
	}
}

// Panel is the lights and the button.
type Panel interface {
	// Show sets what the status LED and the canary light show.
	Show(status, canary Pattern)
	// Shown is what they show now, as the appliance last set them.
	Shown() (status, canary Pattern)
	// Presses delivers the button's debounced presses.
	Presses() <-chan Press
	// Press presses the button from software, through the same path as a
	// finger on it, and returns once the press was handled or ctx ended.
	Press(ctx context.Context, long bool) error
	// Mode names the implementation for the status: "periph", "sim", "off".
	Mode() string
	Close() error
}
