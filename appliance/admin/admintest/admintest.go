// Package admintest provides a fake admin.Controller and a throwaway admin
// socket, for testing the API, its clients and canaryctl without a daemon.
package admintest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// Controller is an admin.Controller with the daemon's own decisions and
// none of its machinery: rollback, resume, promote and the button change
// the latch, the state, the lights and the message as appliance/decide
// decides them for canaryd, refusals included; reload applies a config
// directory that changed, which only counts the generation up (a fake has no
// directory); pause holds the starting status's rollout, as canaryd's
// decide.Pause does, and is refused without one. The fake never judges the canary: its verdict is the one in the
// starting status until a resume resets it, as canaryd's is. Every call is
// recorded. A refusal set with Refuse is returned instead. Its history is
// empty until SetHistory gives it one; the actions add no marks to it.
// It has no incident reports until SetIncidents gives it some: its
// rollbacks write none. It is in no fleet until SetMembers says who is.
type Controller struct {
	mu      sync.Mutex
	status  admin.Status
	history history.Snapshot
	reports []incident.Report
	members []admin.FleetMember // nil: in no fleet
	latch   state.Latch
	verdict analysis.Verdict
	percent float64 // the canary's share to restore on resume
	refuse  map[string]error
	calls   []string
}

// latchedAt is when the fake takes every latch: a fixed moment, so that a
// test can compare statuses whole.
var latchedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// NewController returns a Controller starting at s, whose State, Latch and
// Verdict say whether a canary is configured, what is latched and how the
// canary is judged. s.CanaryPercent is the share a resume restores.
func NewController(s admin.Status) *Controller {
	c := &Controller{status: s, percent: s.CanaryPercent, refuse: map[string]error{},
		history: history.New().Snapshot(latchedAt)}
	if s.Latch != nil {
		at, _ := time.Parse(time.RFC3339, s.Latch.At)
		c.latch = state.Latch{Mode: s.Latch.State, Version: s.Latch.Version, Cause: s.Latch.Cause, At: at}
	}
	if s.Verdict != nil {
		c.verdict = analysis.Verdict{State: s.Verdict.State, Reason: s.Verdict.Reason}
	}
	return c
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

// History implements admin.Controller.
func (c *Controller) History() history.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.history
}

// SetHistory makes History return s from now on.
func (c *Controller) SetHistory(s history.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.history = s
}

// SetMembers makes the fake a member of a fleet whose members Members
// returns from now on.
func (c *Controller) SetMembers(members ...admin.FleetMember) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = slices.Clone(members)
}

// Members implements admin.FleetMembers: those SetMembers gave, nil (in
// no fleet) before.
func (c *Controller) Members() []admin.FleetMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// SetIncidents makes the reports the ones Incidents and Incident return
// from now on.
func (c *Controller) SetIncidents(reports ...incident.Report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = slices.Clone(reports)
}

// Incidents implements admin.Incidents: the summaries of the reports
// SetIncidents gave, newest first, as if in /var/lib/canaryd.
func (c *Controller) Incidents() ([]incident.Summary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sums := []incident.Summary{}
	for _, r := range c.reports {
		sums = append(sums, incident.Summary{Header: r.Header, Requests: len(r.Requests), Users: r.Users.Count,
			Path: "/var/lib/canaryd/incidents/" + r.ID + ".json"})
	}
	slices.SortFunc(sums, func(a, b incident.Summary) int { return strings.Compare(b.ID, a.ID) })
	return sums, nil
}

// Incident implements admin.Incidents.
func (c *Controller) Incident(id string) (incident.Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reports {
		if r.ID == id {
			return r, nil
		}
	}
	return incident.Report{}, fmt.Errorf("%w: %q (`canaryctl incidents` lists them)", incident.ErrNotFound, id)
}

// Rollback implements admin.Controller.
func (c *Controller) Rollback(_ context.Context, cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Rollback", string(cause), func() error { return c.act(decide.Rollback, cause) })
}

// Resume implements admin.Controller.
func (c *Controller) Resume(_ context.Context, cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Resume", string(cause), func() error {
		if ro := c.status.Rollout; ro != nil && ro.Paused && !c.latch.Latched() {
			c.showRollout(false)
			return nil
		}
		return c.act(decide.Resume, cause)
	})
}

// Promote implements admin.Controller.
func (c *Controller) Promote(_ context.Context, cause state.Cause) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Promote", string(cause), func() error { return c.act(decide.Promote, cause) })
}

// Pause implements admin.Controller: it holds the status's rollout, and
// refuses with canaryd's reasons without one or while latched.
func (c *Controller) Pause(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.call("Pause", "", func() error {
		ro := c.status.Rollout
		if ro == nil {
			return decide.ErrNoRollout
		}
		r, err := decide.Pause(state.Rollout{Version: c.status.CanaryVersion, Paused: ro.Paused}, c.status.State, latchedAt)
		if err != nil {
			return err
		}
		c.showRollout(r.Paused)
		return nil
	})
}

// showRollout shows the rollout paused or not, as canaryd's status does.
func (c *Controller) showRollout(paused bool) {
	r := *c.status.Rollout
	r.Paused, r.Holding, r.NextAt = paused, "", nil
	if paused {
		r.Holding = "paused: canaryctl resume lets it go on"
	}
	c.status.Rollout = &r
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

// Button implements admin.Controller as canaryd does: without a canary it
// refuses; otherwise a short press rolls back and a long one resumes, and,
// as with the real button, what the press changes is not reported back.
func (c *Controller) Button(_ context.Context, long bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	arg := "short"
	if long {
		arg = "long"
	}
	return c.call("Button", arg, func() error {
		if !c.hasCanary() {
			return state.ErrNoCanary
		}
		c.act(decide.Press(long), state.CauseButton)
		return nil
	})
}

func (c *Controller) call(method, arg string, do func() error) error {
	c.calls = append(c.calls, fmt.Sprintf("%s(%s)", method, arg))
	if err := c.refuse[method]; err != nil {
		return err
	}
	return do()
}

func (c *Controller) hasCanary() bool { return c.status.State != state.NoCanary }

// act carries out decide.Act's decision on op on the status, as canaryd
// carries it out on its router, state file and panel.
func (c *Controller) act(op decide.Op, cause state.Cause) error {
	dec, err := decide.Act(c.latch, c.hasCanary(), c.status.CanaryVersion, op, cause, latchedAt)
	if err != nil || dec.Steps == nil {
		return err
	}
	for _, step := range dec.Steps {
		if step == decide.ResetCanary {
			c.verdict = analysis.Verdict{}
			if ro := c.status.Rollout; ro != nil {
				// canaryd starts the canary again at the first step.
				r := *ro
				r.Step, r.Percent, r.Paused, r.Holding = 0, r.Steps[0], false, ""
				c.status.Rollout = &r
				c.percent = r.Percent
			}
			if c.status.Verdict != nil {
				v := *c.status.Verdict
				v.State, v.Reason = c.verdict.State, c.verdict.Reason
				c.status.Verdict = &v
			}
		}
	}
	c.latch = dec.Latch
	c.status.State = dec.Mode
	switch dec.Mode {
	case state.Canary:
		c.status.CanaryPercent = c.percent
	case state.Promoted:
		c.status.CanaryPercent = 100
	default:
		c.status.CanaryPercent = 0
	}
	status, canary := decide.Lights(dec.Mode, c.status.Config.Error, c.verdict.State, c.status.Fleet != nil && !c.status.Fleet.Connected)
	c.status.LEDs = admin.LEDs{Status: status, Canary: canary}
	c.status.Message = decide.Message(dec.Mode, dec.Latch, c.verdict)
	c.status.Latch = admin.LatchOf(dec.Latch)
	return nil
}

// Serve serves h on a new unix socket, as canaryd does, until the test
// ends, and returns the socket's path.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	path := filepath.Join(testkit.SocketDir(t), "admin.sock")
	ln, _, err := admin.ListenUnix(path, "")
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

// Report is an incident report of version rolled back by the button at
// rolledBack, fifteen minutes after it went live: the canary served a
// GET, a POST and a PUT with a query string, for two users.
func Report(version string, rolledBack time.Time) incident.Report {
	started := rolledBack.Add(-15 * time.Minute)
	rec := func(s int, id, method, path string, status int, user string) journal.Record {
		return journal.Record{Time: started.Add(time.Duration(s) * time.Second), RequestID: id, Method: method,
			Path: path, Status: status, BytesIn: 12, BytesOut: 34, DurationMs: 5, Upstream: "w2", Version: version, User: user}
	}
	var canary, stable analysis.Counts
	canary.Requests, canary.Errors = 30, 6
	stable.Requests = 60
	return incident.Build(incident.Input{
		Version: version, Cause: state.CauseButton, Reason: "the button was pressed",
		Started: started, RolledBack: rolledBack,
		Verdict: analysis.Verdict{State: analysis.Bad, Reason: "canary 6/30 errors (20.0%) ≥ 5.0% and worse than stable 0/60 (0.0%)"},
		Canary:  canary, Stable: stable,
		Records: []journal.Record{
			rec(1, "r-1", "GET", "/ping", 200, "alice"),
			rec(2, "r-2", "POST", "/orders", 201, "alice"),
			rec(3, "r-3", "PUT", "/orders/7", 502, "bob"),
		},
	})
}
