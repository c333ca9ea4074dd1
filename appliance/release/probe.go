package release

import (
	"context"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/health"
	"github.com/canary-pi/canary-pi/appliance/route"
)

// A canary upstream out of the rotation (max_fails, or a failing health
// check after it once served) gets no traffic, so its failures stop where
// its evidence should grow. While it is out, each tick probes it beside
// stableProbes stable upstreams, the same way (a connection, or its
// health_path): a round of fixed make-up whose outcomes, under the null,
// fail alike, so the verdict judges them as one more source of errors.
const (
	stableProbes = 3
	probeTimeout = time.Second
)

// prober runs the rounds of probes, one at a time, and keeps what they
// found until the verdict takes it.
type prober struct {
	mu     sync.Mutex
	ctx    context.Context // Run's; nil before it
	busy   bool            // a round is in flight
	found  analysis.Tally  // since the last take
	stable int             // the round-robin over stable upstreams
}

// run lets rounds start in ctx.
func (p *prober) run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
}

// take returns what the rounds found since the last take.
func (p *prober) take() analysis.Tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.found
	p.found = analysis.Tally{}
	return t
}

// round probes each canary upstream of plan that is out of the rotation at
// now, beside stable upstreams in it, in the background; nothing when no
// canary is out, when no stable upstream is in, or while a round is in
// flight. served says whether the canary served since it went live: a
// canary its health check has held out from the start has not joined yet,
// and is not judged on its probes.
func (p *prober) round(plan *route.Plan, now time.Time, served bool) {
	var held, stable []*route.Upstream
	for _, u := range plan.Upstreams {
		in := u.Weight > 0 && plan.Healthy(u, now)
		switch {
		case u.Role == config.Canary && u.Weight > 0 && !in && (served || plan.Failing(u, now)):
			held = append(held, u)
		case u.Role != config.Canary && in:
			stable = append(stable, u)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(held) == 0 || len(stable) == 0 || p.busy || p.ctx == nil {
		return
	}
	p.busy = true
	type target struct {
		addr, url string
		canary    bool
	}
	var targets []target
	for _, c := range held {
		// The canary's way of being probed is the round's, on both sides.
		url := func(u *route.Upstream) string {
			if c.HealthPath == "" {
				return ""
			}
			return u.URL.String() + c.HealthPath
		}
		targets = append(targets, target{c.URL.Host, url(c), true})
		for range stableProbes {
			s := stable[p.stable%len(stable)]
			p.stable++
			targets = append(targets, target{s.URL.Host, url(s), false})
		}
	}
	ctx := p.ctx
	go func() {
		var found analysis.Tally
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, t := range targets {
			wg.Go(func() {
				var err error
				if t.url != "" {
					err = health.Probe(ctx, health.Client, t.url, probeTimeout)
				} else {
					err = health.Reach(ctx, t.addr, probeTimeout)
				}
				failed := health.Failed(err)
				mu.Lock()
				defer mu.Unlock()
				if t.canary {
					found.Canary++
					found.CanaryEvents += b2u(failed)
				} else {
					found.Stable++
					found.StableEvents += b2u(failed)
				}
			})
		}
		wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.busy = false
		if ctx.Err() == nil {
			// A round cut short by the stop proves nothing.
			p.found = p.found.Add(found)
		}
	}()
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
