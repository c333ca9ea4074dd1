package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/release"
	"github.com/nats-io/nats.go/jetstream"
)

// KindIncident is the key of one member's incident report's summary,
// incident.MEMBER.ID: each member writes the report of what its own
// canary served, and the fleet lists them all for a rollback.
const KindIncident = "incident"

// tellIncidents is how many of its newest reports a member tells the
// fleet of when it joins: those written while it was cut off.
const tellIncidents = 10

// Reports wraps the state directory's incident reports: a report written
// is told to the fleet as well, by its summary.
func (m *Member) Reports(r release.Reports) release.Reports {
	m.reports = r
	return reports{r, m}
}

type reports struct {
	release.Reports
	m *Member
}

func (r reports) Write(rep incident.Report, keep int, maxBytes int64) (string, error) {
	path, err := r.Reports.Write(rep, keep, maxBytes)
	if err == nil {
		sum := incident.Summary{Header: rep.Header, Requests: len(rep.Requests), Users: rep.Users.Count}
		select {
		case r.m.incidents <- sum:
		default:
			r.m.log.Warn("the fleet is not told of an incident report: too many waiting", "INCIDENT", rep.ID)
		}
	}
	return path, err
}

// incidentKey is the bucket's key of this member's report id: an id holds
// the canary's version, which may have dots.
func (m *Member) incidentKey(id string) string {
	return KindIncident + "." + m.name + "." + strings.Map(func(r rune) rune {
		if validToken(string(r)) {
			return r
		}
		return '_'
	}, id)
}

// tellIncident puts the summary of one of this member's reports.
func (m *Member) tellIncident(ctx context.Context, l *Latch, s incident.Summary) error {
	s.Path = "" // this member's file system, of no use elsewhere
	b, err := json.Marshal(admin.FleetIncident{Member: m.name, Summary: s})
	if err != nil {
		return err
	}
	pc, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = l.kv.Put(pc, m.incidentKey(s.ID), b)
	return err
}

// tellNewestIncidents tells the fleet of this member's newest reports.
func (m *Member) tellNewestIncidents(ctx context.Context, l *Latch, r release.Reports) {
	list, _ := r.List()
	for _, s := range list[:min(len(list), tellIncidents)] {
		if err := m.tellIncident(ctx, l, s); err != nil {
			m.log.Warn("the fleet is not told of an incident report", "INCIDENT", s.ID, "error", err.Error())
			return
		}
	}
}

// Incidents are every member's incident reports that the fleet was told
// of, newest first.
func (m *Member) Incidents(ctx context.Context) ([]admin.FleetIncident, error) {
	m.mu.Lock()
	l, ok := m.latch, m.connected
	m.mu.Unlock()
	if l == nil || !ok {
		return nil, errors.New("the fleet is unreachable: its incident reports need it")
	}
	keys, err := l.Keys(ctx, KindIncident)
	if err != nil {
		return nil, err
	}
	list := []admin.FleetIncident{}
	for _, k := range keys {
		e, err := l.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fleet: incident report %s: %w", k, err)
		}
		var fi admin.FleetIncident
		if json.Unmarshal(e.Value(), &fi) == nil && fi.ID != "" {
			list = append(list, fi)
		}
	}
	slices.SortFunc(list, func(a, b admin.FleetIncident) int {
		return cmp.Or(b.RolledBack.Compare(a.RolledBack), strings.Compare(a.Member, b.Member))
	})
	return list, nil
}
