package panel

import (
	"errors"
	"fmt"
	"strings"
)

// Modes are the ways canaryd's -gpio flag can open the panel.
var Modes = []string{"auto", "periph", "sim", "off"}

// OpenMode opens the front panel for a -gpio mode (one of Modes), on the
// pins of wiring:
//
//   - periph: the header pins of [gpio], or an error naming the pin;
//   - sim: simulated pins, pressed with canaryctl button;
//   - off: no panel;
//   - auto: periph where the kernel has a GPIO chip, else sim. A machine
//     with a GPIO chip but without the pins (a PC, not a Pi) runs sim too;
//     a Pi whose pin is busy is an error, as with periph. The choice is
//     logged once.
func OpenMode(mode string, wiring Wiring, opts Options) (Panel, error) {
	log := opts.logger()
	switch mode {
	case "sim":
		return NewSim(opts), nil
	case "off":
		return Absent{}, nil
	case "periph":
		return openPeriph(wiring, opts)
	case "auto":
		if !HasChip() {
			log.Info("no GPIO chip (/dev/gpiochip*): the front panel is simulated; canaryctl button presses its button")
			return NewSim(opts), nil
		}
		p, err := openPeriph(wiring, opts)
		if errors.Is(err, ErrNotFound) {
			log.Warn("the front panel is simulated: its pins are not on this machine; canaryctl button presses its button",
				"error", err.Error())
			return NewSim(opts), nil
		}
		return p, err
	}
	return nil, fmt.Errorf("-gpio %q: want one of %s", mode, strings.Join(Modes, ", "))
}

// openPeriph opens the header pins, with the Pi's ACT LED mirroring the
// status LED where canaryd may drive it.
func openPeriph(wiring Wiring, opts Options) (Panel, error) {
	opts.ACT = ACTLED()
	p, err := Open(wiring, opts)
	if err != nil {
		return nil, err // not a typed nil *Front in the interface
	}
	return p, nil
}
