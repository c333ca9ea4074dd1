package daemon

import (
	"fmt"
	"log/slog"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/gpio"
)

// openPanel opens the front panel for a -gpio mode.
func openPanel(mode string, pins config.GPIO, log *slog.Logger) (gpio.Panel, error) {
	switch mode {
	case "sim":
		return gpio.NewSim(), nil
	case "off":
		return gpio.Absent{}, nil
	case "auto":
		log.Info("no GPIO driver in this build: using simulated pins (canaryctl button presses the button)")
		return gpio.NewSim(), nil
	case "periph":
		return nil, fmt.Errorf("-gpio periph: this build has no periph driver yet; use -gpio sim or off")
	}
	return nil, fmt.Errorf("-gpio %q: want auto, periph, sim or off", mode)
}
