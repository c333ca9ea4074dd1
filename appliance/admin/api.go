// Package admin is canaryd's control API: the same HTTP+JSON endpoints on
// the unix socket canaryctl uses and on the optional admin TCP listener, and
// the client canaryctl calls them with.
package admin

import (
	"context"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// Status is the body of GET /v1/status and of `canaryctl status --json`.
// The field names are part of the user-facing contract.
type Status struct {
	State         state.Mode `json:"state"` // stable | canary | rolled_back | promoted
	CanaryVersion string     `json:"canary_version"`
	CanaryPercent float64    `json:"canary_percent"`
	LEDs          LEDs       `json:"leds"`
	Config        ConfigInfo `json:"config"`
	Rollout       *Rollout   `json:"rollout,omitempty"` // with canary.steps
	Upstreams     []Upstream `json:"upstreams"`

	// Beyond the contract.
	Version   string   `json:"daemon_version"`    // canaryd's build version
	Listen    string   `json:"listen"`            // the proxy's bound address
	Latch     *Latch   `json:"latch,omitempty"`   // why and when rolled back or promoted
	GPIO      string   `json:"gpio"`              // periph | sim | off
	StartedAt string   `json:"started_at"`        // RFC 3339
	Verdict   *Verdict `json:"verdict,omitempty"` // the canary analysis, when a canary is configured
	Message   string   `json:"message,omitempty"` // a one-line summary for humans
	// CanaryServed is the share of the analysis window's requests the
	// canary served, beside CanaryPercent, the share it is meant to get;
	// absent when the window saw no request.
	CanaryServed *float64 `json:"canary_served_percent,omitempty"`
	// Pending are the changed keys that wait for a restart of canaryd.
	Pending []string `json:"restart_pending,omitempty"`
	// Fleet is this member's place in a fleet; absent without [fleet].
	Fleet *Fleet `json:"fleet,omitempty"`
}

// Fleet is a member of a fleet as the status shows it.
type Fleet struct {
	Name      string `json:"name"`
	Release   string `json:"release"`
	Connected bool   `json:"connected"` // it reaches the release's bucket
	// Members is how many members of the release reported in the last
	// few seconds, this one included while connected.
	Members int `json:"members"`
	// Server is the NATS server this member is connected to, "" cut off.
	Server string `json:"server,omitempty"`
}

// FleetMember is one member of a release as canaryctl fleet shows it
// (GET /v1/fleet): what it last reported of itself.
type FleetMember struct {
	Name string `json:"name"`
	Self bool   `json:"self,omitempty"` // the member answering
	// Connected: it reported within the last few seconds.
	Connected bool `json:"connected"`
	// LastSeen is when it last reported (the NATS server's clock), RFC 3339.
	LastSeen      string     `json:"last_seen"`
	State         state.Mode `json:"state"`
	Verdict       string     `json:"verdict"` // "" without a canary
	CanaryVersion string     `json:"canary_version"`
	CanaryPercent float64    `json:"canary_percent"`
	Step          *int       `json:"step,omitempty"` // 0-based, with canary.steps
	// RequestsPerMinute is what it proxied over the last minute.
	RequestsPerMinute float64 `json:"requests_per_minute"`
}

// LEDs are the lights as they show now.
type LEDs struct {
	Status led.Pattern `json:"status"` // green | green-blink | off
	Canary led.Pattern `json:"canary"` // off | green | red | red-blink
}

// ConfigInfo describes the running configuration.
type ConfigInfo struct {
	Generation uint64   `json:"generation"`
	Error      string   `json:"error"` // the last rejected config, "" when the directory is valid
	Dir        string   `json:"dir"`
	Files      []string `json:"files"`
}

// Upstream is one backend as the status shows it.
type Upstream struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	URL      string `json:"url"`
	Weight   int    `json:"weight"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	Healthy  bool   `json:"healthy"`
	InFlight int64  `json:"in_flight"`

	// Over the analysis window (canary.window).
	WindowRequests uint64  `json:"window_requests"`
	WindowErrors   uint64  `json:"window_errors"`
	ErrorRate      float64 `json:"error_rate"`   // 0..1
	RatePerMin     float64 `json:"rate_per_min"` // requests per minute
	LatencyP50Ms   float64 `json:"latency_p50_ms"`
	LatencyP99Ms   float64 `json:"latency_p99_ms"`
}

// Verdict is the canary analysis as of now.
type Verdict struct {
	// State is good, bad, not_enough_traffic or shared_failure (the canary
	// fails, but no worse than stable: not the canary's fault).
	State  analysis.State `json:"state"`
	Reason string         `json:"reason"` // one line with the numbers
	// Evidence is how strong the evidence against the canary is, as a
	// likelihood ratio (1 before any; below 1 when it fares as well as the
	// stable or better), of the test nearer its threshold: the Threshold
	// at which that test judges the canary bad.
	Evidence  float64 `json:"evidence"`
	Threshold float64 `json:"threshold"`
	// Errors and Latency are each test's; Latency is absent when
	// canary.latency_ratio is 0.
	Errors  *Test `json:"errors"`
	Latency *Test `json:"latency,omitempty"`
	// FalseAlarm is canary.false_alarm: the largest chance that a canary
	// as good as the stable is ever judged bad during its release.
	FalseAlarm float64 `json:"false_alarm"`
	Since      string  `json:"since"`            // RFC 3339: when the release, and its evidence, began
	BadAt      string  `json:"bad_at,omitempty"` // RFC 3339: when a test turned bad
	// JudgedAt is when the canary was last judged (RFC 3339, to the
	// nanosecond): four times a second while canaryd runs.
	JudgedAt string `json:"judged_at,omitempty"`
	// AutoRollback is canary.auto_rollback; Window canary.window, the span
	// of the upstreams' recent counts.
	AutoRollback bool   `json:"auto_rollback"`
	Window       string `json:"window"` // e.g. "30s"
}

// Test is one of the verdict's sequential tests: its evidence and, for
// the reason, the stretch of the release the evidence comes from.
type Test struct {
	Evidence  float64 `json:"evidence"`
	Threshold float64 `json:"threshold"`
	// Of the stretch: the events (errors, or slow answers) and how many
	// were the canary's, how many would have been at equal rates, and the
	// canary's share of the attempts.
	CanaryEvents uint64  `json:"canary_events"`
	Events       uint64  `json:"events"`
	Expected     float64 `json:"expected"`
	Share        float64 `json:"share"`
	// SlowOverMs are, for the latency test, what counted as slow in the
	// last tick, per version; absent until the stable has answered enough.
	SlowOverMs *SlowOver `json:"slow_over_ms,omitempty"`
}

// SlowOver is what counts as slow for each version, in milliseconds.
type SlowOver struct {
	Stable float64 `json:"stable"`
	Canary float64 `json:"canary"`
}

// Rollout is a progressive rollout (canary.steps) as of now.
type Rollout struct {
	Steps   []float64 `json:"steps"`   // canary.steps, percent
	Step    int       `json:"step"`    // 0-based index into Steps
	Percent float64   `json:"percent"` // Steps[Step]
	Entered string    `json:"entered"` // RFC 3339: when the step began
	// NextAt is when the next step is due (RFC 3339); null at the last
	// step and while holding.
	NextAt  *string `json:"next_at"`
	Paused  bool    `json:"paused"`  // canaryctl pause
	Holding string  `json:"holding"` // why it does not advance, in one line; "" when on schedule
}

// Latch is the persisted rollback or promotion.
type Latch struct {
	State   state.Mode  `json:"state"`   // rolled_back | promoted
	Version string      `json:"version"` // the canary.version it applies to
	Cause   state.Cause `json:"cause"`   // command | button | auto | api
	By      string      `json:"by"`      // the cause for people: "the button"
	At      string      `json:"at"`      // RFC 3339
}

// LatchOf is l as the status shows it, nil when nothing is latched.
func LatchOf(l state.Latch) *Latch {
	if !l.Latched() {
		return nil
	}
	return &Latch{State: l.Mode, Version: l.Version, Cause: l.Cause, By: l.Cause.Who(), At: l.At.UTC().Format(time.RFC3339)}
}

// Controller is what the API drives: the running daemon. Every method
// returns once the change has taken effect. An error is a refusal the
// operator can act on (its text is shown to them as it is).
type Controller interface {
	Status() Status
	// History is the last fifteen minutes of traffic per role and the
	// rollout's marks: the body of GET /v1/history.
	History() history.Snapshot
	Rollback(ctx context.Context, cause state.Cause) error
	Resume(ctx context.Context, cause state.Cause) error
	Promote(ctx context.Context, cause state.Cause) error
	Pause(ctx context.Context) error
	Reload(ctx context.Context) error
	// Button presses the button through the same debounce path as the
	// real one; long is a press of 3 s or more.
	Button(ctx context.Context, long bool) error
}

// Incidents is what the API reads the incident reports from. A Controller
// that also implements it serves GET /v1/incidents and
// /v1/incidents/{id}; one that does not answers there, with 404, that this
// canaryd records none, as canaryctl expects of an older daemon.
type Incidents interface {
	// Incidents are the summaries of the reports, newest first. An error
	// wrapping incident.ErrUnreadable comes with the reports that could be
	// read, and those are served.
	Incidents() ([]incident.Summary, error)
	// Incident is one report; an unknown id is an error wrapping
	// incident.ErrNotFound, a malformed one incident.ErrInvalidID.
	Incident(id string) (incident.Report, error)
}

// FleetMembers is what a controller in a fleet also implements: it serves
// GET /v1/fleet. Members is nil without a [fleet] section, answered with
// 404 and a line that says so.
type FleetMembers interface {
	Members() []FleetMember
}

// FleetIncident is one member's incident report, as the fleet lists them
// (GET /v1/incidents?fleet=1): the member, and the report's summary.
type FleetIncident struct {
	Member string `json:"member"`
	incident.Summary
}

// FleetIncidents is what a controller in a fleet also implements: every
// member's incident reports, newest first; nil without a [fleet] section.
type FleetIncidents interface {
	FleetIncidents(ctx context.Context) ([]FleetIncident, error)
}
