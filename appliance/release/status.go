package release

import (
	"maps"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/web"
)

// Status is the release as the admin API shows it at now: the state, the
// split, the lights, the config, the rollout, the verdict and each
// upstream's numbers. The daemon adds what is its own (addresses, the
// build, the panel).
func (c *Controller) Status(now time.Time) admin.Status {
	c.mu.Lock()
	cfg, gen, cfgErr, latch, verdict, plan := c.cfg, c.gen, c.cfgErr, c.latch, c.verdict, c.Router.Plan()
	evidence, thresholds, judged, cutOff := c.evidence, c.thresholds, c.judgedAt, c.cutOff
	rollout := c.rolloutStatus(now)
	c.mu.Unlock()
	mode := plan.Mode
	// The lights as the state sets them, whether or not a panel shows them
	// (-gpio off): status "off" means canaryd is not running.
	status, canary := decide.Lights(mode, cfgErr, verdict.State, cutOff)
	st := admin.Status{
		State:         mode,
		CanaryVersion: cfg.Canary.Version,
		CanaryPercent: round1(plan.CanaryPercent(now)),
		LEDs:          admin.LEDs{Status: status, Canary: canary},
		Config:        admin.ConfigInfo{Generation: gen, Error: cfgErr, Dir: c.ConfigDir, Files: cfg.Files},
		Rollout:       rollout,
		Upstreams:     make([]admin.Upstream, 0, len(plan.Upstreams)),
		Message:       decide.Message(mode, latch, verdict),
	}
	st.Latch = admin.LatchOf(latch)
	if plan.HasCanary {
		st.Verdict = verdictStatus(verdict, evidence, cfg, thresholds, judged)
	}
	for _, u := range plan.Upstreams {
		var w analysis.Counts
		var span time.Duration
		if win := u.Stats.Window.Load(); win != nil {
			w, span = win.Snapshot(now), win.Span()
		}
		st.Upstreams = append(st.Upstreams, admin.Upstream{
			Name: u.Name, Role: string(u.Role), URL: u.URL.String(), Weight: u.Weight,
			Requests: u.Stats.Requests(), Errors: u.Stats.Errors(),
			Healthy: u.Weight > 0 && plan.Healthy(u, now), InFlight: u.Stats.InFlight(),
			WindowRequests: w.Requests, WindowErrors: w.Errors,
			ErrorRate: round4(w.ErrorRate()), RatePerMin: round1(w.PerMinute(span)),
			LatencyP50Ms: millis(w.Quantile(0.5)), LatencyP99Ms: millis(w.Quantile(0.99)),
		})
	}
	st.CanaryServed = servedShare(st.Upstreams)
	return st
}

// servedShare is the percentage of the window's requests canary upstreams
// served, nil when there were none.
func servedShare(ups []admin.Upstream) *float64 {
	var canary, all uint64
	for _, u := range ups {
		all += u.WindowRequests
		if u.Role == string(config.Canary) {
			canary += u.WindowRequests
		}
	}
	if all == 0 {
		return nil
	}
	p := round1(100 * float64(canary) / float64(all))
	return &p
}

func round4(f float64) float64       { return float64(int64(f*1e4+0.5)) / 1e4 }
func millis(d time.Duration) float64 { return round1(float64(d) / float64(time.Millisecond)) }
func round1(f float64) float64       { return float64(int64(f*10+0.5)) / 10 }

// FillMetrics sets the release's part of a /metrics scrape: the verdict
// and its evidence, the rollbacks, the config's generation and errors.
func (c *Controller) FillMetrics(s *web.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.CanaryVersion = c.cfg.Canary.Version
	s.ConfigGeneration, s.ConfigErrors, s.ConfigValid = c.gen, c.cfgRejects, c.cfgErr == ""
	s.Rollbacks = maps.Clone(c.rollbacks)
	s.Verdict, s.HasVerdict = c.verdict.State, c.Router.Plan().HasCanary
	s.Evidence = map[string]analysis.Gauge{"errors": c.verdict.Errors}
	if c.cfg.Canary.LatencyRatio > 0 {
		s.Evidence["latency"] = c.verdict.Latency
	}
}

// Evidence is each test's evidence now, for the status page's time line;
// a test that is off has none.
func (c *Controller) Evidence() history.Evidence {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := history.Evidence{Errors: c.verdict.Errors.Evidence}
	if c.cfg.Canary.LatencyRatio > 0 {
		ev.Latency = c.verdict.Latency.Evidence
	}
	return ev
}

// SetHealth publishes the plan with the upstream named name in the rotation
// (up) or out of it, as its health check now says.
func (c *Controller) SetHealth(name string, up bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Router.Publish(c.Router.Plan().WithHealth(name, up, now))
}
