// Package admintest provides a fake admin.Controller and a throwaway admin
// socket, for testing the API, its clients and canaryctl without a daemon.
package admintest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
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
		State:         "canary",
		CanaryVersion: "v2",
		CanaryPercent: 33.3,
		LEDs:          admin.LEDs{Status: "green", Canary: "green"},
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
func (c *Controller) Rollback(_ context.Context, cause string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Rollback", cause, func() error { return c.rollback(cause) })
}

// Resume implements admin.Controller.
func (c *Controller) Resume(_ context.Context, cause string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Resume", cause, c.resume)
}

// Promote implements admin.Controller.
func (c *Controller) Promote(_ context.Context, cause string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Promote", cause, func() error {
		switch c.status.State {
		case "rolled_back":
			return errors.New("rolled back: resume first, then promote")
		case "stable":
			return errors.New("no canary configured: nothing to promote")
		}
		c.status.State = "promoted"
		c.status.CanaryPercent = 100
		c.status.LEDs.Canary = "off"
		c.status.Latch = c.latch("promoted", cause)
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
	return c.call("Button", "short", func() error { return c.rollback("button") })
}

func (c *Controller) call(method, arg string, do func() error) error {
	c.calls = append(c.calls, fmt.Sprintf("%s(%s)", method, arg))
	if err := c.refuse[method]; err != nil {
		return err
	}
	return do()
}

func (c *Controller) rollback(cause string) error {
	if c.status.State == "stable" {
		return errors.New("no canary configured: nothing to roll back")
	}
	c.status.State = "rolled_back"
	c.status.CanaryPercent = 0
	c.status.LEDs.Canary = "red-blink"
	c.status.Latch = c.latch("rolled_back", cause)
	return nil
}

func (c *Controller) resume() error {
	if c.status.State == "stable" {
		return errors.New("no canary configured: nothing to resume")
	}
	c.status.State = "canary"
	c.status.CanaryPercent = c.percent
	c.status.LEDs.Canary = "green"
	c.status.Latch = nil
	return nil
}

func (c *Controller) latch(state, cause string) *admin.Latch {
	return &admin.Latch{
		State:   state,
		Version: c.status.CanaryVersion,
		Cause:   cause,
		At:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339),
	}
}

// Serve serves h on a new unix socket, as canaryd does, until the test
// ends, and returns the socket's path.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	path := filepath.Join(testkit.SocketDir(t), "admin.sock")
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
