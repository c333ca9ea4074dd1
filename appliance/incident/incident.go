// Package incident is the report canaryd writes at every rollback: what
// the rolled-back version served, and above all every request it may have
// changed data with, so that the data can be repaired. Build is pure; Store
// keeps the reports in the state directory, one whole file each.
package incident

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// Input is what a report is built from, as the daemon has it at the
// moment of the rollback.
type Input struct {
	Version    string      // canary.version
	Cause      state.Cause // who or what rolled back
	Reason     string      // one line: the verdict's reason, or what the operator did
	Started    time.Time   // when this version went live
	RolledBack time.Time
	Verdict    analysis.Verdict
	// Canary and Stable are the analysis window's counts at the rollback.
	Canary, Stable analysis.Counts
	// Records are the requests the canary served for this version since
	// Started, oldest first.
	Records []journal.Record
	// Lost is how many records the journal overwrote before the report
	// read them: the report is then incomplete, and says so.
	Lost uint64
}

// MaxUsers is how many distinct users a report names; it counts them all.
const MaxUsers = 10000

// Header is what a report says of its rollback: the first part of its
// file, and what a list of the reports shows of each.
type Header struct {
	ID         string      `json:"id"`
	Version    string      `json:"version"`
	Cause      state.Cause `json:"cause"`
	By         string      `json:"by,omitempty"` // the cause for people: "the button"
	Started    time.Time   `json:"started"`
	RolledBack time.Time   `json:"rolled_back"`
	// Served is every request the canary served since Started, as far as
	// the journal kept them; Lost those the journal had overwritten.
	Served uint64 `json:"served"`
	Lost   uint64 `json:"lost,omitempty"`
}

// Report is one incident, as its file and the API hold it.
type Report struct {
	Header
	Reason  string  `json:"reason"`
	Verdict Verdict `json:"verdict"`
	// Canary and Stable are the analysis window's numbers at the rollback:
	// what the verdict was judged on.
	Canary   Side              `json:"canary"`
	Stable   Side              `json:"stable"`
	ByStatus map[string]uint64 `json:"by_status"` // "200", "502"; "0" for no response
	ByMethod map[string]uint64 `json:"by_method"`
	Users    Users             `json:"users"`
	// Requests are the non-idempotent ones (POST, PUT, PATCH, DELETE), in
	// the order they ended.
	Requests []Request `json:"requests"`
	Note     string    `json:"note,omitempty"` // why the report is incomplete
}

// Verdict is the analysis's verdict at the rollback, with the evidence
// against the canary of the test nearer its threshold (omitted by reports
// written before the verdict had any).
type Verdict struct {
	State     analysis.State `json:"state"`
	Reason    string         `json:"reason"`
	Evidence  float64        `json:"evidence,omitempty"`
	Threshold float64        `json:"threshold,omitempty"`
}

// Side is one role's numbers over the analysis window.
type Side struct {
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	ErrorRate float64 `json:"error_rate"` // 0..1
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// Users are the distinct users (the sticky key) the canary served.
type Users struct {
	Count int      `json:"count"` // all of them
	IDs   []string `json:"ids"`   // sorted; the first MaxUsers seen
}

// Request is one non-idempotent request the canary served.
type Request struct {
	Time          time.Time `json:"time"`
	RequestID     string    `json:"request_id"`
	Method        string    `json:"method"`
	Path          string    `json:"path"` // without the query string
	PathTruncated bool      `json:"path_truncated,omitempty"`
	Status        int       `json:"status"` // 0: the upstream gave none
	BytesIn       int64     `json:"bytes_in"`
	BytesOut      int64     `json:"bytes_out"`
	DurationMs    float64   `json:"duration_ms"`
	Upstream      string    `json:"upstream"`
	User          string    `json:"user,omitempty"`
	Body          string    `json:"body,omitempty"`
	BodyTruncated bool      `json:"body_truncated,omitempty"`
}

// verdictOf is the report's verdict of v; a test that is off has no
// threshold to show.
func verdictOf(v analysis.Verdict) Verdict {
	g := v.Strongest()
	r := Verdict{State: v.State, Reason: v.Reason, Evidence: g.Evidence, Threshold: g.Threshold}
	if math.IsInf(r.Threshold, 0) || math.IsNaN(r.Threshold) {
		r.Evidence, r.Threshold = 0, 0
	}
	return r
}

// Build makes the report of in. Its ID is the rollback's time and the
// version, which sorts as time does; Store makes it unique.
func Build(in Input) Report {
	r := Report{
		Header: Header{ID: ID(in.RolledBack, in.Version), Version: in.Version, Cause: in.Cause, By: in.Cause.Who(),
			Started: in.Started.UTC(), RolledBack: in.RolledBack.UTC(), Served: uint64(len(in.Records)), Lost: in.Lost},
		Reason:   in.Reason,
		Verdict:  verdictOf(in.Verdict),
		Canary:   side(in.Canary),
		Stable:   side(in.Stable),
		ByStatus: map[string]uint64{},
		ByMethod: map[string]uint64{},
		Users:    Users{IDs: []string{}},
		Requests: []Request{},
	}
	seen := map[string]bool{}
	for i := range in.Records {
		rec := &in.Records[i]
		r.ByStatus[fmt.Sprint(rec.Status)]++
		r.ByMethod[rec.Method]++
		if rec.User != "" && !seen[rec.User] {
			seen[rec.User] = true
			if len(r.Users.IDs) < MaxUsers {
				r.Users.IDs = append(r.Users.IDs, rec.User)
			}
		}
		if !Idempotent(rec.Method) {
			r.Requests = append(r.Requests, request(rec))
		}
	}
	r.Users.Count = len(seen)
	slices.Sort(r.Users.IDs)
	if in.Lost > 0 {
		r.Note = fmt.Sprintf("incomplete: the journal overwrote %d canary requests before this report read them (raise journal.records)", in.Lost)
	}
	return r
}

// Idempotent reports whether a request with this method leaves data as it
// was when repeated: everything but POST, PUT, PATCH and DELETE, as the
// report counts them.
func Idempotent(method string) bool {
	switch method {
	case "POST", "PUT", "PATCH", "DELETE":
		return false
	}
	return true
}

// ID is a report's name: the rollback's time in UTC and the version, with
// any character that does not belong in a file name replaced, such as
// "20261201T101500Z-v2".
func ID(rolledBack time.Time, version string) string {
	v := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			return c
		}
		return '_'
	}, version)
	v = v[:min(len(v), 100)]
	if v == "" {
		v = "unknown"
	}
	return rolledBack.UTC().Format("20060102T150405Z") + "-" + v
}

func side(c analysis.Counts) Side {
	return Side{
		Requests: c.Requests, Errors: c.Errors, ErrorRate: c.ErrorRate(),
		P50Ms: ms(c.Quantile(0.5)), P99Ms: ms(c.Quantile(0.99)),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func request(rec *journal.Record) Request {
	// The journal keeps paths without the query, which may hold a
	// secret; a record from elsewhere is held to the same rule.
	path, _, _ := strings.Cut(rec.Path, "?")
	return Request{
		Time: rec.Time.UTC(), RequestID: rec.RequestID, Method: rec.Method, Path: path,
		PathTruncated: rec.PathTruncated, Status: rec.Status, BytesIn: rec.BytesIn, BytesOut: rec.BytesOut,
		DurationMs: rec.DurationMs, Upstream: rec.Upstream, User: rec.User,
		Body: rec.Body, BodyTruncated: rec.BodyTruncated,
	}
}
