package daemon

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/release"
)

// reports are the incident reports in the state directory, listed with a
// journal entry, once, for a report that cannot be read (a failing SD
// card): the list sets it aside and lists the others.
type reports struct {
	*incident.Store
	log     *slog.Logger
	listErr atomic.Pointer[string] // the last error listing the reports, logged once
}

// openReports opens the incident reports in the state dir.
func openReports(stateDir string, log *slog.Logger) (*reports, error) {
	s, err := incident.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("incident reports: %w", err)
	}
	return &reports{Store: s, log: log}, nil
}

// List lists the reports, newest first.
func (r *reports) List() ([]incident.Summary, error) {
	list, err := r.Store.List()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if old := r.listErr.Swap(&msg); msg != "" && (old == nil || *old != msg) {
		r.log.Error("incident reports that cannot be read", "MESSAGE_ID", release.MsgUnreadable, "error", msg)
	}
	return list, err
}

// Incidents lists the incident reports, newest first.
func (d *Daemon) Incidents() ([]incident.Summary, error) { return d.reports.List() }

// Incident is one incident report.
func (d *Daemon) Incident(id string) (incident.Report, error) { return d.reports.Get(id) }
