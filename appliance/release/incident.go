package release

import (
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// setLive records that the canary of c.cfg serves from now, a new version
// or one re-armed after a rollback, and starts its evidence.
func (c *Controller) setLive(now time.Time) {
	if !c.cfg.HasCanary() {
		return
	}
	c.live = state.Live{Version: c.cfg.Canary.Version, Since: now}
	if err := c.Store.SaveLive(c.live); err != nil {
		c.Log.Error("cannot save since when the canary serves", "error", err.Error())
	}
	c.startEvidence()
}

// reportIncident starts writing the report of the rollback that just moved
// the traffic, at now. What the report needs from c is taken here; the
// journal is read and the file written in the background, so a rollback
// never waits for them, and reports are written one at a time.
func (c *Controller) reportIncident(cause state.Cause, reason string, now time.Time) {
	canary, stable := c.Router.Plan().Recent(now)
	in := incident.Input{
		Version: c.cfg.Canary.Version, Cause: cause, Reason: reason,
		Started: c.live.Since, RolledBack: now, Verdict: c.verdict, Canary: canary, Stable: stable,
	}
	if in.Reason == "" {
		in.Reason = c.verdict.Reason
	}
	keep, maxBytes := c.cfg.Incidents.Keep, int64(c.cfg.Incidents.MaxBytes)
	upTo := c.Journal.Seq()
	c.reports.Add(1)
	go func() {
		defer c.reports.Done()
		c.reporting.Lock()
		defer c.reporting.Unlock()
		in.Records, in.Lost = c.Journal.After(0, func(r *journal.Record) bool {
			return r.Seq <= upTo && r.Version == in.Version && !r.Time.Before(in.Started)
		})
		r := incident.Build(in)
		path, err := c.Reports.Write(r, keep, maxBytes)
		if err != nil {
			c.Log.Error("cannot write the incident report", "MESSAGE_ID", MsgIncident, "CANARY_VERSION", in.Version, "error", err.Error())
			return
		}
		c.Log.Warn("incident report: "+path, "MESSAGE_ID", MsgIncident, "INCIDENT", r.ID, "INCIDENT_PATH", path,
			"CANARY_VERSION", in.Version, "CAUSE", cause, "REASON", in.Reason,
			"REQUESTS", r.Served, "WRITES", len(r.Requests), "USERS", r.Users.Count, "LOST", in.Lost)
	}()
}

// recoverIncident writes the report of the rollback the latch records
// when there is none among reports, those in the state directory: canaryd
// was killed (a crash, a power cut) after it saved the latch and before
// the report, written in the background, was whole. What the report would
// have listed was in memory and is gone; the report says so, and says what
// is known: the version, the cause, since when the canary served and when
// it was rolled back. Reports are pruned oldest first, so a report as new
// as the latch exists whenever this one was written.
func (c *Controller) recoverIncident(cfg *config.Config, reports []incident.Summary) {
	l := c.latch
	if l.Mode != state.RolledBack || l.Cause == state.CauseUnreadable || l.At.IsZero() || l.Version == "" {
		return
	}
	for _, s := range reports {
		if !s.RolledBack.Before(l.At) {
			return
		}
	}
	in := incident.Input{Version: l.Version, Cause: l.Cause, RolledBack: l.At}
	if c.live.Version == l.Version {
		in.Started = c.live.Since
	}
	r := incident.Build(in)
	r.Note = "canaryd stopped (a crash or a power cut) after this rollback and before its report was written: the requests the canary served were in memory and are not listed"
	path, err := c.Reports.Write(r, cfg.Incidents.Keep, int64(cfg.Incidents.MaxBytes))
	if err != nil {
		c.Log.Error("cannot write the incident report of the rollback before the restart", "MESSAGE_ID", MsgIncident,
			"CANARY_VERSION", l.Version, "error", err.Error())
		return
	}
	c.Log.Warn("incident report, recovered after a restart: "+path, "MESSAGE_ID", MsgIncident, "INCIDENT", r.ID,
		"INCIDENT_PATH", path, "CANARY_VERSION", l.Version, "CAUSE", l.Cause)
}
