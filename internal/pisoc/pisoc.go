// Package pisoc reads and moves a Raspberry Pi's GPIO lines from outside an
// emulated Pi: QEMU's raspi0, raspi1ap and raspi3b machines model the SoC's
// GPIO controller, so the host can see what the real driver in the guest did
// to the pins and press the button on them, as a multimeter and a finger
// would on a real board.
//
// Reads go through QMP's human monitor (xp, physical memory, which leaves
// the guest running); writes go through QEMU's gdbstub in physical-memory
// mode, which pauses the guest for the few milliseconds of the write. QEMU's
// model keeps a line's last level when the line goes back to an input, so a
// lit LED is a line that is an output and high.
package pisoc

import (
	"fmt"
	"slices"
	"time"
)

// Register offsets in the GPIO block (BCM2835 ARM Peripherals, 6.1).
const (
	gpfsel0 = 0x00
	gpset0  = 0x1c
	gpclr0  = 0x28
	gplev0  = 0x34
)

// Bases of the GPIO block in physical memory, by SoC.
const (
	BaseBCM2835 = 0x20200000 // Pi 1, Pi Zero (raspi0, raspi1ap)
	BaseBCM2837 = 0x3f200000 // Pi 2, Pi 3 (raspi2b, raspi3b)
)

// Function is what a line's function-select bits make of it.
type Function string

const (
	Input  Function = "input"
	Output Function = "output"
)

func function(fsel uint32) Function {
	switch fsel {
	case 0:
		return Input
	case 1:
		return Output
	}
	return Function(fmt.Sprintf("alt%d", altNumber[fsel]))
}

// altNumber maps the function-select codes 4, 5, 6, 7, 3, 2 to ALT0..ALT5.
var altNumber = map[uint32]int{4: 0, 5: 1, 6: 2, 7: 3, 3: 4, 2: 5}

// Line is one GPIO line as the registers show it.
type Line struct {
	Function Function `json:"function"`
	Level    int      `json:"level"`
}

// Lit reports whether an LED on the line (to ground through a resistor)
// lights: the line drives it high.
func (l Line) Lit() bool { return l.Function == Output && l.Level == 1 }

// Registers are the function selects of GPIO0 to GPIO39 and the levels of
// GPIO0 to GPIO31 (the header's lines are 0 to 27), read at one moment.
type Registers struct {
	FSel  [4]uint32
	Level uint32
}

// Line decodes GPIO n (0 to 31).
func (r Registers) Line(n int) Line {
	fsel := r.FSel[n/10] >> (3 * (n % 10)) & 7
	return Line{Function: function(fsel), Level: int(r.Level >> n & 1)}
}

// Wiring names the panel's lines by GPIO number, as canaryd's [gpio]
// section does by name.
type Wiring struct {
	StatusLED, CanaryGreen, CanaryRed, Button int
}

// DefaultWiring is canaryd's default [gpio] section.
var DefaultWiring = Wiring{StatusLED: 22, CanaryGreen: 27, CanaryRed: 17, Button: 23}

// Lines are the panel's GPIO numbers, LEDs first.
func (w Wiring) Lines() []int { return []int{w.StatusLED, w.CanaryGreen, w.CanaryRed, w.Button} }

// Sample is the panel at one moment.
type Sample struct {
	At                             time.Duration // since the first sample
	Status, CanaryGreen, CanaryRed bool          // lit
	ButtonDown                     bool          // the line reads low
	Lines                          map[int]Line
}

// Decode reads the panel out of the registers.
func (w Wiring) Decode(r Registers, at time.Duration) Sample {
	s := Sample{At: at, Lines: map[int]Line{}}
	for _, n := range w.Lines() {
		s.Lines[n] = r.Line(n)
	}
	s.Status = s.Lines[w.StatusLED].Lit()
	s.CanaryGreen = s.Lines[w.CanaryGreen].Lit()
	s.CanaryRed = s.Lines[w.CanaryRed].Lit()
	s.ButtonDown = s.Lines[w.Button].Level == 0
	return s
}

// Reading is what the panel showed over a watch, in the status JSON's
// words (led.Pattern), with the blinking measured.
type Reading struct {
	Status       string          `json:"status"`
	Canary       string          `json:"canary"`
	StatusPeriod float64         `json:"status_period_ms,omitempty"` // a whole on+off cycle, median
	CanaryPeriod float64         `json:"canary_period_ms,omitempty"`
	StatusLitPct float64         `json:"status_lit_percent"`
	CanaryLitPct float64         `json:"canary_lit_percent"`
	Samples      int             `json:"samples"`
	SpanMillis   float64         `json:"span_ms"`
	Lines        map[string]Line `json:"lines"` // the last sample's, "GPIO17": {...}
}

// Read names what samples taken over a while show: a light lit in every
// sample is steady, one that went both ways blinks, one never lit is off.
// The canary light is its green or its red line; both lit is "amber",
// which canaryd never shows.
func Read(w Wiring, samples []Sample) Reading {
	var r Reading
	if len(samples) == 0 {
		return r
	}
	r.Samples = len(samples)
	r.SpanMillis = ms(samples[len(samples)-1].At - samples[0].At)
	pick := func(f func(Sample) bool) []bool {
		out := make([]bool, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		return out
	}
	status := pick(func(s Sample) bool { return s.Status })
	green := pick(func(s Sample) bool { return s.CanaryGreen })
	red := pick(func(s Sample) bool { return s.CanaryRed })
	at := make([]time.Duration, len(samples))
	for i, s := range samples {
		at[i] = s.At
	}

	r.Status, r.StatusPeriod, r.StatusLitPct = pattern("green", status, at)
	g, gp, gl := pattern("green", green, at)
	rd, rp, rl := pattern("red", red, at)
	switch {
	case g != "off" && rd != "off":
		r.Canary = "amber"
	case rd != "off":
		r.Canary, r.CanaryPeriod, r.CanaryLitPct = rd, rp, rl
	default:
		r.Canary, r.CanaryPeriod, r.CanaryLitPct = g, gp, gl
	}
	r.Lines = map[string]Line{}
	for n, l := range samples[len(samples)-1].Lines {
		r.Lines[fmt.Sprintf("GPIO%d", n)] = l
	}
	return r
}

// pattern names one colour's samples: off, COLOUR, or COLOUR-blink with the
// median length of its whole cycles (lit edge to lit edge) and the share of
// samples lit.
func pattern(colour string, lit []bool, at []time.Duration) (string, float64, float64) {
	n := 0
	var rises []time.Duration
	for i, on := range lit {
		if on {
			n++
			if i > 0 && !lit[i-1] {
				rises = append(rises, at[i])
			}
		}
	}
	pct := 100 * float64(n) / float64(len(lit))
	switch n {
	case 0:
		return "off", 0, pct
	case len(lit):
		return colour, 0, pct
	}
	var cycles []float64
	for i := 1; i < len(rises); i++ {
		cycles = append(cycles, ms(rises[i]-rises[i-1]))
	}
	return colour + "-blink", median(cycles), pct
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ms is d in milliseconds, to a tenth: the sampling is no finer.
func ms(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}
