package panel

import (
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// simWiring is the simulated panel's pins, named as the contract's example
// config wires a Pi.
var simWiring = Wiring{StatusLED: "GPIO22", CanaryGreen: "GPIO27", CanaryRed: "GPIO17", Button: "GPIO23"}

// NewSim returns a panel on simulated pins (-gpio sim), driven by the same
// code as a Pi's header. Nobody sees the lights: the appliance's status
// shows what it set them to. Press moves the simulated button pin, which
// goes through the debouncer like a finger on a real one.
func NewSim(opts Options) *Front {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	button := newSimPin(23, simWiring.Button, opts.Clock)
	pins := Pins{
		StatusLED:   newSimPin(22, simWiring.StatusLED, opts.Clock),
		CanaryGreen: newSimPin(27, simWiring.CanaryGreen, opts.Clock),
		CanaryRed:   newSimPin(17, simWiring.CanaryRed, opts.Clock),
		Button:      button,
	}
	f, err := newFront(pins, simWiring, opts, "sim", true)
	if err != nil {
		panic("panel: simulated pins failed: " + err.Error()) // simulated pins do not fail
	}
	return f
}

// simPin is a simulated GPIO line: an output keeps the level last written;
// an input reads high through its pull-up until an edge (Edges) moves it.
type simPin struct {
	name  string
	num   int
	clock clockwork.Clock
	// edges delivers the levels a press or a release moves the line to,
	// each ending a WaitForEdge; unbuffered, so that the watcher has taken
	// an edge before the press goes on.
	edges chan gpio.Level

	mu    sync.Mutex
	level gpio.Level
	pull  gpio.Pull
	out   bool
}

func newSimPin(num int, name string, clock clockwork.Clock) *simPin {
	return &simPin{name: name, num: num, clock: clock, edges: make(chan gpio.Level)}
}

// Edges is the channel that moves the line, as a finger on the button.
func (p *simPin) Edges() chan gpio.Level { return p.edges }

func (p *simPin) String() string         { return fmt.Sprintf("%s(%d)", p.name, p.num) }
func (p *simPin) Name() string           { return p.name }
func (p *simPin) Number() int            { return p.num }
func (p *simPin) Halt() error            { return nil }
func (p *simPin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

// Function is the line's direction, as a Pi's pins report it.
func (p *simPin) Function() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out {
		return "Out/" + p.level.String()
	}
	return "In/" + p.level.String()
}

func (p *simPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out, p.pull = false, pull
	if pull == gpio.PullUp {
		p.level = gpio.High
	}
	return nil
}

func (p *simPin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *simPin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// WaitForEdge waits for a level on Edges, up to timeout on the pin's clock
// (a negative timeout: for ever).
func (p *simPin) WaitForEdge(timeout time.Duration) bool {
	var after <-chan time.Time
	if timeout >= 0 {
		after = p.clock.After(timeout)
	}
	select {
	case l := <-p.edges:
		p.mu.Lock()
		p.level = l
		p.mu.Unlock()
		return true
	case <-after:
		return false
	}
}

func (p *simPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out, p.level = true, l
	return nil
}

func (p *simPin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("%s: a simulated pin has no PWM", p.name)
}
