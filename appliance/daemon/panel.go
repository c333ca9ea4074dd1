package daemon

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/gpio"
)

// openPanel opens the front panel for a -gpio mode:
//
//   - periph: the header pins of [gpio], or an error naming the pin;
//   - sim: simulated pins, pressed with canaryctl button;
//   - off: no panel;
//   - auto: periph where the kernel has a GPIO chip, else sim. A machine
//     with a GPIO chip but without the pins (a PC, not a Pi) runs sim too;
//     a Pi whose pin is busy is an error, as with periph. The choice is
//     logged once.
func openPanel(mode string, pins config.GPIO, log *slog.Logger) (gpio.Panel, error) {
	opts := gpio.Options{Logger: log}
	switch mode {
	case "sim":
		return gpio.NewSim(opts), nil
	case "off":
		return gpio.Absent{}, nil
	case "periph":
		return openPeriph(pins, opts)
	case "auto":
		if !gpio.HasChip() {
			log.Info("no GPIO chip (/dev/gpiochip*): the front panel is simulated; canaryctl button presses its button")
			return gpio.NewSim(opts), nil
		}
		p, err := openPeriph(pins, opts)
		if errors.Is(err, gpio.ErrNotFound) {
			log.Warn("the front panel is simulated: its pins are not on this machine; canaryctl button presses its button",
				"error", err.Error())
			return gpio.NewSim(opts), nil
		}
		return p, err
	}
	return nil, fmt.Errorf("-gpio %q: want auto, periph, sim or off", mode)
}

// openPeriph opens the header pins, with the Pi's ACT LED mirroring the
// status LED where canaryd may drive it.
func openPeriph(pins config.GPIO, opts gpio.Options) (gpio.Panel, error) {
	opts.ACT = gpio.ACTLED()
	p, err := gpio.Open(gpio.Wiring(pins), opts)
	if err != nil {
		return nil, err // not a typed nil *gpio.Front in the interface
	}
	return p, nil
}
