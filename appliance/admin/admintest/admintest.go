// Package admintest provides a fake admin.Controller and a throwaway admin
// socket, for testing the API, its clients and canaryctl without a daemon.
package admintest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// Controller is an admin.Controller with the contract's state changes and
// none of the machinery: rollback, resume and promote move between the
// contract's states, reload touches only the config generation, pause is
// refused as canaryd refuses it (it has no progressive rollout), and every
// call is recorded. A refusal set with Refuse is returned instead.
type Controller struct {
	mu      sync.Mutex
	status  admin.Status
	percent float64 // the canary's share to restore on resume
	refuse  map[string]error
	calls   []string
}

// NewController returns a Controller starting at s. s.CanaryPercent is
// the share a resume restores.
func NewController(s admin.Status) *Controller {
	return &Controller{status: s, percent: s.CanaryPercent, refuse: map[string]error{}}
}

// Canary is a status like the seed demo's: w1 stable with weight 10, w2
// the canary v2 with weight 5, config generation 1.
func Canary() admin.Status {
	return admin.Status{
		State:         state.Canary,
		CanaryVersion: "v2",
		CanaryPercent: 33.3,
		LEDs:          admin.LEDs{Status: led.Green, Canary: led.Green},
		Config:        admin.ConfigInfo{Generation: 1, Dir: "/etc/canaryd", Files: []string{"canaryd.toml"}},
		Upstreams: []admin.Upstream{
			{Name: "w1", Role: "stable", URL: "http://127.0.0.2:8001", Weight: 10, Requests: 120, Healthy: true},
			{Name: "w2", Role: "canary", URL: "http://127.0.0.3:8002", Weight: 5, Requests: 60, Errors: 3, Healthy: true},
		},
		Version:   "test",
		Listen:    "127.0.0.1:8080",
		GPIO:      "sim",
		StartedAt: "2025-01-02T03:04:05Z",
	}
}

// Refuse makes method ("Rollback", "Promote", ...) fail with err from now
// on; a nil err accepts it again.
func (c *Controller) Refuse(method string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.refuse, method)
		return
	}
	c.refuse[method] = err
}

// Calls returns the calls so far, such as "Rollback(command)" or
// "Button(long)".
func (c *Controller) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// Status implements admin.Controller.
func (c *Controller) Status() admin.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Rollback implements admin.Controller.
func (c *Controller) Rollback(_ context.Context, cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Rollback", string(cause), func() error { return c.rollback(cause) })
}

// Resume implements admin.Controller.
func (c *Controller) Resume(_ context.Context, cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Resume", string(cause), c.resume)
}

// Promote implements admin.Controller.
func (c *Controller) Promote(_ context.Context, cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Promote", string(cause), func() error {
		switch c.status.State {
		case state.RolledBack:
			return errors.New("rolled back: resume first, then promote")
		case state.NoCanary:
			return errors.New("no canary configured: nothing to promote")
		}
		c.status.State = state.Promoted
		c.status.CanaryPercent = 100
		c.status.LEDs.Canary = led.Off
		c.status.Latch = c.latch(state.Promoted, cause)
		return nil
	})
}

// Pause implements admin.Controller: it refuses, with canaryd's reason,
// as canaryd has no progressive rollout to hold.
func (c *Controller) Pause(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Pause", "", func() error {
		return errors.New("no progressive rollout is configured (canary.steps): nothing to pause")
	})
}

// Reload implements admin.Controller.
func (c *Controller) Reload(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Reload", "", func() error {
		c.status.Config.Generation++
		return nil
	})
}

// Button implements admin.Controller: a short press rolls back, a long one
// resumes, as the real button does.
func (c *Controller) Button(_ context.Context, long bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if long {
		return c.call("Button", "long", c.resume)
	}
	return c.call("Button", "short", func() error { return c.rollback(state.CauseButton) })
}

func (c *Controller) call(method, arg string, do func() error) error {
	c.calls = append(c.calls, fmt.Sprintf("%s(%s)", method, arg))
	if err := c.refuse[method]; err != nil {
		return err
	}
	return do()
}

func (c *Controller) rollback(cause state.Cause) error {
	if c.status.State == state.NoCanary {
		return errors.New("no canary configured: nothing to roll back")
	}
	c.status.State = state.RolledBack
	c.status.CanaryPercent = 0
	c.status.LEDs.Canary = led.RedBlink
	c.status.Latch = c.latch(state.RolledBack, cause)
	return nil
}

func (c *Controller) resume() error {
	if c.status.State == state.NoCanary {
		return errors.New("no canary configured: nothing to resume")
	}
	c.status.State = state.Canary
	c.status.CanaryPercent = c.percent
	c.status.LEDs.Canary = led.Green
	c.status.Latch = nil
	return nil
}

func (c *Controller) latch(m state.Mode, cause state.Cause) *admin.Latch {
	return &admin.Latch{
		State:   m,
		Version: c.status.CanaryVersion,
		Cause:   cause,
		At:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339),
	}
}

// SocketPath returns a path for a unix socket that goes away with the
// test. It is short on purpose: socket paths are limited to about 108
// bytes, which a test's TempDir can exceed.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "admin.sock")
}

// Serve serves h on a new unix socket, as canaryd does, until the test
// ends, and returns the socket's path.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	path := SocketPath(t)
	ln, err := admin.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin.Serve: %v", err)
		}
	})
	return path
}
