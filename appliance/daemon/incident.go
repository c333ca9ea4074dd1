package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// setLive records that the canary of d.cfg serves from now: a new version,
// or one re-armed after a rollback; d.mu is held.
func (d *Daemon) setLive(now time.Time) {
	if !d.cfg.HasCanary() {
		return
	}
	d.live = state.Live{Version: d.cfg.Canary.Version, Since: now}
	if err := d.store.SaveLive(d.live); err != nil {
		d.log.Error("cannot save since when the canary serves", "error", err.Error())
	}
	d.startEvidence()
}

// reportIncident starts writing the report of the rollback that just moved
// the traffic, at now; d.mu is held. What the report needs from d is taken
// here; the journal is read and the file written in the background, so a
// rollback never waits for them, and reports are written one at a time.
func (d *Daemon) reportIncident(cause state.Cause, reason string, now time.Time) {
	canary, stable := roles(d.router.Plan(), now)
	in := incident.Input{
		Version: d.cfg.Canary.Version, Cause: cause, Reason: reason,
		Started: d.live.Since, RolledBack: now, Verdict: d.verdict, Canary: canary, Stable: stable,
	}
	if in.Reason == "" {
		in.Reason = d.verdict.Reason
	}
	keep, maxBytes := d.cfg.Incidents.Keep, int64(d.cfg.Incidents.MaxBytes)
	upTo := d.journal.Seq()
	d.incidents.Add(1)
	go func() {
		defer d.incidents.Done()
		d.incidentMu.Lock()
		defer d.incidentMu.Unlock()
		in.Records, in.Lost = d.journal.After(0, func(r *journal.Record) bool {
			return r.Seq <= upTo && r.Version == in.Version && !r.Time.Before(in.Started)
		})
		r := incident.Build(in)
		path, err := d.reports.Write(r, keep, maxBytes)
		if err != nil {
			d.log.Error("cannot write the incident report", "MESSAGE_ID", MsgIncident, "CANARY_VERSION", in.Version, "error", err.Error())
			return
		}
		d.log.Warn("incident report: "+path, "MESSAGE_ID", MsgIncident, "INCIDENT", r.ID, "INCIDENT_PATH", path,
			"CANARY_VERSION", in.Version, "CAUSE", cause, "REASON", in.Reason,
			"REQUESTS", r.Served, "WRITES", len(r.Requests), "USERS", r.Users.Count, "LOST", in.Lost)
	}()
}

// recoverIncident writes the report of the rollback the latch records
// when there is none: canaryd was killed (a crash, a power cut) after it
// saved the latch and before the report, written in the background, was
// whole. What the report would have listed was in memory and is gone; the
// report says so, and says what is known: the version, the cause, since
// when the canary served and when it was rolled back. Reports are pruned
// oldest first, so a report as new as the latch exists whenever this one
// was written.
// reports are those in the state dir now.
func (d *Daemon) recoverIncident(l state.Latch, live state.Live, cfg *config.Config, reports []incident.Summary) {
	if l.Mode != state.RolledBack || l.Cause == state.CauseUnreadable || l.At.IsZero() || l.Version == "" {
		return
	}
	for _, s := range reports {
		if !s.RolledBack.Before(l.At) {
			return
		}
	}
	in := incident.Input{Version: l.Version, Cause: l.Cause, RolledBack: l.At}
	if live.Version == l.Version {
		in.Started = live.Since
	}
	r := incident.Build(in)
	r.Note = "canaryd stopped (a crash or a power cut) after this rollback and before its report was written: the requests the canary served were in memory and are not listed"
	path, err := d.reports.Write(r, cfg.Incidents.Keep, int64(cfg.Incidents.MaxBytes))
	if err != nil {
		d.log.Error("cannot write the incident report of the rollback before the restart", "MESSAGE_ID", MsgIncident,
			"CANARY_VERSION", l.Version, "error", err.Error())
		return
	}
	d.log.Warn("incident report, recovered after a restart: "+path, "MESSAGE_ID", MsgIncident, "INCIDENT", r.ID,
		"INCIDENT_PATH", path, "CANARY_VERSION", l.Version, "CAUSE", l.Cause)
}

// Incidents lists the incident reports, newest first. A report that cannot
// be read (a failing SD card) is kept aside and logged once, and the others
// are listed.
func (d *Daemon) Incidents() ([]incident.Summary, error) {
	list, err := d.reports.List()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if old := d.listErr.Swap(&msg); msg != "" && (old == nil || *old != msg) {
		d.log.Error("incident reports that cannot be read", "MESSAGE_ID", MsgUnreadable, "error", msg)
	}
	return list, err
}

// Incident is one incident report.
func (d *Daemon) Incident(id string) (incident.Report, error) { return d.reports.Get(id) }

// openReports opens the incident reports in the state dir.
func openReports(stateDir string) (*incident.Store, error) {
	s, err := incident.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("incident reports: %w", err)
	}
	return s, nil
}

// flushJournal writes the journal's new records to its file once a second,
// while journal.file is on, until ctx ends.
func (d *Daemon) flushJournal(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			err := d.jfile.Flush(now)
			// One entry when writing starts to fail, one when it works again.
			if (err != nil) != failing {
				failing = err != nil
				if failing {
					d.log.Error("cannot write the journal file", "PATH", d.jfile.Path(), "error", err.Error())
				} else {
					d.log.Info("the journal file is written again", "PATH", d.jfile.Path())
				}
			}
		}
	}
}
