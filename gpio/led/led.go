// Package led is what a light of the front panel can show, spelled as the
// status JSON spells it. It imports nothing, so the admin API, canaryctl
// and the decisions name a light's pattern without linking the GPIO
// drivers, as periph keeps its pin interfaces apart from its drivers.
package led

// Pattern is what a light shows. The values are the contract's `leds`
// field values.
type Pattern string

const (
	Off        Pattern = "off"
	Green      Pattern = "green"
	GreenBlink Pattern = "green-blink"
	// GreenWink is lit, dark a quarter second every second: the status
	// light of a member of a fleet that cannot reach it.
	GreenWink Pattern = "green-wink"
	Red       Pattern = "red"
	RedBlink  Pattern = "red-blink"
)

// Patterns are all the patterns a light can show.
func Patterns() []Pattern { return []Pattern{Off, Green, GreenBlink, GreenWink, Red, RedBlink} }

// Blinks reports whether the pattern blinks.
func (p Pattern) Blinks() bool { return p == GreenBlink || p == GreenWink || p == RedBlink }
