package panel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"periph.io/x/conn/v3/gpio"
)

// ACTLED is the sysfs directory of the Pi's own activity LED, "" where there
// is none. Its name changed over the years: ACT on current kernels, led0 on
// older ones.
func ACTLED() string {
	for _, name := range []string{"ACT", "led0"} {
		dir := filepath.Join("/sys/class/leds", name)
		if _, err := os.Stat(filepath.Join(dir, "brightness")); err == nil {
			return dir
		}
	}
	return ""
}

// sysLED is an LED the kernel drives, such as the ACT LED, as an output for
// a light. Its trigger (usually disk activity) is set to "none" while the
// panel drives it, and restored at Close.
type sysLED struct {
	dir     string
	trigger string // the trigger to restore; "" for none
}

func openSysLED(dir string) (*sysLED, error) {
	b, err := os.ReadFile(filepath.Join(dir, "trigger"))
	if err != nil {
		return nil, err
	}
	l := &sysLED{dir: dir, trigger: currentTrigger(string(b))}
	if err := l.setTrigger("none"); err != nil {
		return nil, err
	}
	return l, nil
}

// currentTrigger picks the bracketed entry of a trigger file:
// "none [mmc0] timer" is mmc0.
func currentTrigger(s string) string {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			return strings.Trim(f, "[]")
		}
	}
	return ""
}

func (l *sysLED) setTrigger(t string) error {
	return os.WriteFile(filepath.Join(l.dir, "trigger"), []byte(t), 0)
}

func (l *sysLED) Out(level gpio.Level) error {
	v := "0"
	if level {
		v = "1"
	}
	return os.WriteFile(filepath.Join(l.dir, "brightness"), []byte(v), 0)
}

// restore gives the LED back to the kernel as it was before.
func (l *sysLED) restore() error {
	if l.trigger == "" || l.trigger == "none" {
		return nil
	}
	err := l.setTrigger(l.trigger)
	if err != nil {
		return errors.New("the ACT LED's trigger could not be restored: " + err.Error())
	}
	return nil
}
