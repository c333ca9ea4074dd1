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
