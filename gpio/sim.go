package gpio

import (
	"context"
	"errors"
	"sync"
)

// Sim is a panel without hardware: the lights are values the status
// reports, the button is pressed with Press (canaryctl button).
type Sim struct {
	mu             sync.Mutex
	status, canary Pattern
	presses        chan Press
}

// NewSim returns a simulated panel with both lights off.
func NewSim() *Sim {
	return &Sim{status: Off, canary: Off, presses: make(chan Press, 16)}
}

func (s *Sim) Show(status, canary Pattern) {
	s.mu.Lock()
	s.status, s.canary = status, canary
	s.mu.Unlock()
}

func (s *Sim) Shown() (Pattern, Pattern) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.canary
}

func (s *Sim) Presses() <-chan Press { return s.presses }

func (s *Sim) Press(ctx context.Context, long bool) error {
	p := Press{Long: long, handled: make(chan struct{})}
	select {
	case s.presses <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-p.handled:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sim) Mode() string { return "sim" }

func (s *Sim) Close() error {
	s.Show(Off, Off)
	return nil
}

// Absent is the panel of an appliance run without GPIO (-gpio off):
// nothing lights and there is no button to press.
type Absent struct{}

func (Absent) Show(status, canary Pattern) {}
func (Absent) Shown() (Pattern, Pattern)   { return Off, Off }
func (Absent) Presses() <-chan Press       { return nil }
func (Absent) Mode() string                { return "off" }
func (Absent) Close() error                { return nil }
func (Absent) Press(context.Context, bool) error {
	return errors.New("there is no button: canaryd runs with -gpio off")
}
