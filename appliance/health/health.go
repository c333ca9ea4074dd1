// Package health is the active health check of an upstream with a
// health_path: a GET every health_interval, and the rule that turns the
// answers into in or out of the rotation. Like HAProxy's rise and fall, an
// upstream joins after Rise passes in a row and leaves after Fall failures
// in a row, so one lost probe moves nothing; it starts out, so a new
// version takes no traffic before it answers.
package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Rise and Fall are the passes and failures in a row that move an upstream
// in and out of the rotation.
const (
	Rise = 2
	Fall = 3
)

// Check is one upstream's health as its probes tell it. The zero value is
// an upstream not yet checked: out of the rotation.
type Check struct {
	Up     bool
	streak int // passes in a row while down, failures in a row while up
}

// Observe takes one probe's outcome and returns the new Check and whether
// it moved the upstream in or out.
func (c Check) Observe(pass bool) (Check, bool) {
	if pass == c.Up {
		c.streak = 0
		return c, false
	}
	c.streak++
	need := Rise
	if c.Up {
		need = Fall
	}
	if c.streak < need {
		return c, false
	}
	return Check{Up: !c.Up}, true
}

// Client sends the health checks and the probes: its own connections,
// apart from the data plane's pools, so that a check measures the upstream
// and not a busy pool.
var Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}

// Probe sends one health check: GET url (the upstream's URL and its
// health_path) within timeout. A 2xx or 3xx answer passes; anything else,
// or no answer, is the error returned.
func Probe(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "canaryd-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return &StatusError{URL: url, Code: resp.StatusCode, Status: resp.Status}
	}
	return nil
}

// StatusError is a probe's answer outside 2xx and 3xx.
type StatusError struct {
	URL    string
	Code   int
	Status string // as the upstream sent it: "503 Service Unavailable"
}

func (e *StatusError) Error() string { return "GET " + e.URL + ": " + e.Status }

// Reach connects to addr (host:port) within timeout and closes the
// connection at once: the probe of an upstream without a health_path,
// which tells a dead upstream (refused, reset, silent) from a live one
// without sending it a request.
func Reach(ctx context.Context, addr string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Failed reports whether err, from Probe or Reach, is a failure as the
// verdict counts them: no answer, or a 5xx one. A 404 from a path the
// upstream does not serve says nothing about whether it is alive.
func Failed(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	return err != nil
}

// Run probes url every interval until ctx ends and calls changed (from its
// own goroutine) each time the upstream moves in or out, with the error
// of the probe that took it out.
func Run(ctx context.Context, client *http.Client, url string, interval time.Duration, changed func(up bool, err error)) {
	var c Check
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := Probe(ctx, client, url, interval)
		if ctx.Err() != nil {
			return
		}
		var moved bool
		if c, moved = c.Observe(err == nil); moved {
			changed(c.Up, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Checks are the health checks of a config's upstreams, each running in
// its own goroutine until the config no longer has it.
type Checks struct {
	mu      sync.Mutex
	ctx     context.Context // Start's; nil before it
	want    []Upstream      // what Sync asked for before Start
	changed func(u Upstream, up bool, err error)
	running map[string]context.CancelFunc // by upstream and check
}

// Upstream is one upstream to check: its name, and the check as
// config.Upstream.HealthCheck describes it ("" for none).
type Upstream struct {
	Name, Check, URL string
	Interval         time.Duration
}

// Start runs the checks of the last Sync in ctx, and those of every Sync
// after; changed is called, from the check's goroutine, each time an
// upstream moves in or out, with the error of the probe that took it out.
func (cs *Checks) Start(ctx context.Context, changed func(u Upstream, up bool, err error)) {
	cs.mu.Lock()
	cs.ctx, cs.changed = ctx, changed
	cs.mu.Unlock()
	cs.Sync(cs.want)
}

// Sync runs a check for each of ups with one, and stops those ups no
// longer have or have changed.
func (cs *Checks) Sync(ups []Upstream) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.want = ups
	if cs.ctx == nil {
		return
	}
	if cs.running == nil {
		cs.running = map[string]context.CancelFunc{}
	}
	want := map[string]Upstream{}
	for _, u := range ups {
		if u.Check != "" {
			want[u.Name+"\x00"+u.Check] = u
		}
	}
	for key, stop := range cs.running {
		if _, ok := want[key]; !ok {
			stop()
			delete(cs.running, key)
		}
	}
	for key, u := range want {
		if _, ok := cs.running[key]; ok {
			continue
		}
		ctx, stop := context.WithCancel(cs.ctx)
		cs.running[key] = stop
		changed := cs.changed
		go Run(ctx, Client, u.URL, u.Interval, func(up bool, err error) {
			if ctx.Err() == nil { // else a Sync changed or removed the check meanwhile
				changed(u, up, err)
			}
		})
	}
}
