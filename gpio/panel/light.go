package panel

import (
	"log/slog"

	"github.com/canary-pi/canary-pi/gpio/led"
	"periph.io/x/conn/v3/gpio"
)

// output is what an LED needs of a pin. periph's gpio.PinOut has it, and so
// has the Pi's own ACT LED in sysfs (sysLED), which is not a header pin.
type output interface {
	Out(gpio.Level) error
}

// A lamp is one LED on one output, lit when the output is high.
//
// It remembers the level it wrote instead of reading the pin back: on the
// GPIO character device, Read() on an output line turns it into an input,
// and the LED would go dark.
type lamp struct {
	name   string // for the log: "gpio.canary_red"
	pin    output
	on     bool
	failed bool // an error was logged; later ones are not
}

// set lights or darkens the LED, touching the pin only when the level
// changes: a steady light costs no writes, a blink one per half period.
func (l *lamp) set(on bool, log *slog.Logger) {
	if on == l.on {
		return
	}
	l.write(on, log)
}

// write drives the pin whatever the remembered level is.
func (l *lamp) write(on bool, log *slog.Logger) {
	l.on = on
	if err := l.pin.Out(gpio.Level(on)); err != nil && !l.failed {
		l.failed = true
		log.Error("an LED cannot be driven", "LED", l.name, "error", err.Error())
	}
}

// A light shows a led.Pattern on its LEDs: the status LED is one green LED (and
// the ACT LED mirroring it), the canary light a green and a red LED, or the
// two legs of one bicolour LED. A colour that is not wired stays dark rather
// than showing on the other: a red verdict must never look green.
type light struct {
	pattern    led.Pattern
	green, red []*lamp
}

// show drives the LEDs for the pattern at the blinker's turn.
func (l *light) show(turn uint, log *slog.Logger) {
	green, red := levels(l.pattern, turn)
	for _, g := range l.green {
		g.set(green, log)
	}
	for _, r := range l.red {
		r.set(red, log)
	}
}

func (l *light) blinks() bool { return l.pattern.Blinks() }

// levels is which colour a pattern lights at a turn of the blinker, which
// turns every BlinkPeriod: a blink is lit every other turn, a wink all but
// one turn in four.
func levels(p led.Pattern, turn uint) (green, red bool) {
	on := turn%2 == 0
	switch p {
	case led.Green:
		return true, false
	case led.GreenBlink:
		return on, false
	case led.GreenWink:
		return turn%4 != 3, false
	case led.Red:
		return false, true
	case led.RedBlink:
		return false, on
	}
	return false, false
}
