package release

import (
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/route"
)

// Configure applies cfg, a config that validated, at now: the latch it
// implies (a new canary.version re-arms the canary and is judged on its
// own requests), the routing plan of its generation, made ready by the
// engine and then published, the rollout's step and the evidence. The
// first call takes up the release the state directory kept.
func (c *Controller) Configure(cfg *config.Config, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.cfg == nil
	prevVersion := cfg.Canary.Version
	var prev *route.Plan
	if first {
		c.takeUp(cfg, now)
	} else {
		prevVersion, prev = c.cfg.Canary.Version, c.Router.Plan()
	}
	dec := decide.Configured(c.latch, cfg, prevVersion)
	c.cfg, c.cfgErr, c.bootRefused = cfg, "", false
	c.gen++
	plan := c.applyConfigured(dec, route.NewPlan(cfg, dec.Mode, prev), now)
	c.Engine.Prepare(plan)
	if old := c.Router.Publish(plan); old != nil {
		c.Engine.Retire(old, plan)
	}
	switch {
	case first:
		c.stepBase = canaryRequests(plan)
		// The verdict the restored evidence holds, on the lights from the
		// start: a canary judged bad before a restart is red after it,
		// before any request.
		c.judgeNow()
	case cfg.Canary.Version != prevVersion:
		c.mark(now, history.Version, versionText(prevVersion, cfg.Canary.Version))
	case cfg.HasCanary() && c.evidence.Errors.Tolerance != policyOf(cfg).ErrorsTolerance():
		// The errors test is of one null, its tolerance: another is
		// another test, from now.
		c.restartEvidence(now)
		c.Log.Warn("canary.tolerance changed: the verdict starts afresh", "CANARY_VERSION", cfg.Canary.Version,
			"TOLERANCE", cfg.Canary.Tolerance)
	}
	c.showLights()
}

// takeUp takes up the release the state directory kept, for cfg, the first
// config: the report of a rollback a kill kept from being written, and the
// evidence of the release, when cfg's canary is the one that served.
func (c *Controller) takeUp(cfg *config.Config, now time.Time) {
	if reports, err := c.Reports.List(); err == nil || reports != nil {
		c.recoverIncident(cfg, reports)
	}
	c.cfg = cfg
	if c.live.Version != cfg.Canary.Version {
		c.setLive(now)
	} else {
		c.restoreEvidence()
	}
}

// Unchanged reports whether cfg is the running config, and nothing since
// was refused that cfg would clear: editors and config tools touch files
// without changing them, and a reload right after the watcher's must not
// count as another generation.
func (c *Controller) Unchanged(cfg *config.Config) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg != nil && cfg.Digest == c.cfg.Digest && (c.cfgErr == "" || c.bootRefused)
}

// Rejected records that a config did not validate, msg its error, and
// reports whether that is news (another error than the one shown). boot:
// it is the boot partition's copy the import refused, shown until a
// changed config directory applies.
func (c *Controller) Rejected(msg string, boot bool) (news bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	news = msg != c.cfgErr
	c.cfgErr, c.bootRefused = msg, boot
	if !boot {
		c.cfgRejects++
	}
	c.showLights()
	return news
}

// Generation is the running config's generation: 1 for the first, one
// more for each config applied since.
func (c *Controller) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// applyConfigured carries out what the config c.cfg does to the latch, the
// rollout and plan, its new routing plan, and returns the plan to publish.
func (c *Controller) applyConfigured(dec decide.Decision, plan *route.Plan, now time.Time) *route.Plan {
	if decide.Rearmed(c.latch, dec) {
		c.Log.Info("a new canary version re-arms the canary", "CANARY_VERSION", c.cfg.Canary.Version,
			"LATCHED_VERSION", c.latch.Version, "LATCH", string(c.latch.Mode))
	}
	c.latch = dec.Latch
	for _, step := range dec.Steps {
		switch step {
		case decide.Save:
			if err := c.Store.Save(dec.Latch); err != nil {
				c.Log.Error("cannot save the latch", "error", err.Error())
			}
		case decide.ResetCanary:
			c.resetCanary(plan, now)
		}
	}
	return c.rolloutPlan(plan, now)
}

// resetCanary gives the canary of plan a clean slate at now: empty
// analysis windows, a slow start as if it had just joined, and a release
// that serves from now, judged on its own requests.
func (c *Controller) resetCanary(plan *route.Plan, now time.Time) {
	for _, u := range plan.Upstreams {
		if u.Role == config.Canary {
			u.Stats.ResetWindow()
		}
	}
	plan.Rotation().Join(config.Canary, now)
	c.setLive(now)
}

// policy is the verdict's policy: cfg's, with canary.false_alarm split
// evenly between this member's own test and the pooled one in a fleet,
// so that either turning bad on noise stays as unlikely as on a Pi alone.
func (c *Controller) policy() analysis.Policy {
	p := policyOf(c.cfg)
	if c.Fleet != nil {
		p.FalseAlarm /= 2
	}
	return p
}

// policyOf is the verdict's policy in cfg.
func policyOf(cfg *config.Config) analysis.Policy {
	p := cfg.Canary
	return analysis.Policy{FalseAlarm: p.FalseAlarm, Tolerance: p.Tolerance, ErrorRate: p.ErrorRate,
		MinRequests: p.MinRequests, LatencyRatio: p.LatencyRatio, LatencyFloor: p.LatencyFloor}
}
