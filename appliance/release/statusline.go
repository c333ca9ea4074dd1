package release

import (
	"fmt"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// rate turns a growing request count into requests per minute, from samples
// a few seconds apart over the last minute.
type rate struct {
	samples [13]sample // one minute at the 5 s report interval, plus one
	n       int
}

type sample struct {
	at    time.Time
	total uint64
}

// add records a sample and returns the rate over the oldest sample kept.
func (r *rate) add(now time.Time, total uint64) float64 {
	r.samples[r.n%len(r.samples)] = sample{now, total}
	r.n++
	oldest := r.samples[0]
	if r.n > len(r.samples) {
		oldest = r.samples[r.n%len(r.samples)]
	}
	span := now.Sub(oldest.at)
	if span <= 0 || total < oldest.total {
		return 0
	}
	return float64(total-oldest.total) / span.Minutes()
}

// StatusLine is e.g. "canary v2 33% healthy · 1520 req/min", or with
// canary.steps "canary v2 5% step 2/4 healthy · 1520 req/min". The word
// after the share is the canary light's: "failing" when the verdict is bad
// and the light red, "healthy" while it is green.
//
// It is the service manager's status line: one caller, a few seconds
// apart, from whose calls the request rate is worked out.
func (c *Controller) StatusLine(now time.Time) string {
	c.mu.Lock()
	plan := c.Router.Plan()
	mode := plan.Mode
	var total uint64
	for _, u := range plan.Upstreams {
		total += u.Stats.Requests()
	}
	perMin := c.rate.add(now, total)
	version, cfgErr, verdict := c.cfg.Canary.Version, c.cfgErr, c.verdict.State
	steps := ""
	if s, ok := decide.ScheduleOf(c.cfg); ok {
		steps = fmt.Sprintf(" step %d/%d", c.rollout.Step+1, len(s.Steps))
		if c.rollout.Paused {
			steps += " paused"
		}
	}
	c.mu.Unlock()

	var line string
	switch mode {
	case state.Canary:
		word := "healthy"
		if verdict == analysis.Bad {
			word = "failing"
		}
		line = fmt.Sprintf("canary %s %.0f%%%s %s", version, plan.CanaryPercent(now), steps, word)
	case state.RolledBack:
		line = fmt.Sprintf("ROLLED BACK %s: all traffic to stable", version)
	case state.Promoted:
		line = fmt.Sprintf("promoted %s: all traffic to the canary", version)
	default:
		line = "no canary: all traffic to stable"
	}
	line += fmt.Sprintf(" · %.0f req/min", perMin)
	if cfgErr != "" {
		line += " · CONFIG REJECTED: " + cfgErr
	}
	return line
}
