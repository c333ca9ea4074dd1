package panel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// ErrNotFound is wrapped by Open's error when a pin is not on this machine:
// not a Raspberry Pi, or its GPIO chips cannot be opened.
var ErrNotFound = errors.New("pin not found")

// HasChip reports whether the kernel offers a GPIO character device.
func HasChip() bool {
	chips, _ := filepath.Glob("/dev/gpiochip*")
	return len(chips) > 0
}

// Open returns the panel on a Raspberry Pi's header pins, named as in the
// [gpio] config section. The lines are driven through the GPIO character
// device (/dev/gpiochipN), which every Pi from the Zero to the Pi 5 has and
// which the gpio group may use without root. An error names the config key
// and the pin: the line may be missing (ErrNotFound) or held by another
// program.
func Open(w Wiring, opts Options) (*Front, error) {
	// Only the character device's driver is registered (this package
	// imports gpioioctl, not periph's host, which brings every board's
	// drivers): on an ARM Pi run as root those map /dev/mem and probe the
	// SoC's DMA, clock and PWM blocks, none of which the panel needs.
	state, err := driverreg.Init()
	if err != nil {
		return nil, fmt.Errorf("gpio: %w", err)
	}
	if opts.Logger != nil {
		for _, d := range state.Failed {
			opts.Logger.Debug("a periph driver did not load", "driver", d.D.String(), "error", d.Err.Error())
		}
	}
	var pins Pins
	outs := []struct {
		key, name string
		to        *gpio.PinOut
	}{
		{"status_led", w.StatusLED, &pins.StatusLED},
		{"canary_green", w.CanaryGreen, &pins.CanaryGreen},
		{"canary_red", w.CanaryRed, &pins.CanaryRed},
	}
	for _, o := range outs {
		if o.name == "" {
			continue
		}
		if *o.to, err = line(o.key, o.name); err != nil {
			return nil, err
		}
	}
	if w.Button != "" {
		if pins.Button, err = line("button", w.Button); err != nil {
			return nil, err
		}
	}
	return newFront(pins, w, opts, "periph", false)
}

// line finds a header pin's GPIO line on the character device's chips. No
// chip number is assumed: periph orders the chips with the SoC's pinctrl-* bank first,
// and a line is looked up by its name.
func line(key, name string) (gpio.PinIO, error) {
	for _, chip := range gpioioctl.Chips {
		for _, l := range chip.Lines() {
			// periph renames a line whose name another chip took first
			// to "gpiochipN-NAME".
			if l.Name() == name || l.Name() == chip.Name()+"-"+name {
				return l, nil
			}
		}
	}
	// The Pi 1 to 4's device trees name the header lines with a special
	// function after it ("SDA1" for GPIO2, "TXD1" for GPIO14); in the SoC's
	// bank the line offset is the GPIO number on every Pi.
	if n, ok := strings.CutPrefix(name, "GPIO"); ok {
		if off, err := strconv.Atoi(n); err == nil {
			for _, chip := range gpioioctl.Chips {
				if strings.HasPrefix(chip.Label(), "pinctrl-") && off >= 0 && off < chip.LineCount() {
					return chip.Lines()[off], nil
				}
			}
		}
	}
	why := "is this a Raspberry Pi? -gpio sim simulates the panel"
	if reason := chipTrouble(); reason != "" {
		why = reason
	}
	return nil, fmt.Errorf("gpio.%s: %s: %w (%s)", key, name, ErrNotFound, why)
}

// chipTrouble is why no GPIO chip could be opened although the kernel has
// some, "" when there is no such reason.
func chipTrouble() string {
	if len(gpioioctl.Chips) > 0 {
		return ""
	}
	paths, _ := filepath.Glob("/dev/gpiochip*")
	for _, p := range paths {
		f, err := os.Open(p)
		if err == nil {
			f.Close()
			continue
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Sprintf("cannot open %s: permission denied; canaryd must run in the gpio group", p)
		}
		return err.Error()
	}
	return ""
}

// isBusy reports whether err is the kernel refusing a line that another
// program (or a kernel driver) holds. periph's ioctl errors keep only the
// errno's text.
func isBusy(err error) bool {
	return errors.Is(err, syscall.EBUSY) || strings.Contains(err.Error(), syscall.EBUSY.Error())
}
