package analysis

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy is when a canary counts as failing: canary.error_rate,
// canary.min_requests and canary.latency_ratio from the config.
type Policy struct {
	ErrorRate   float64 // share of failed requests, 0 to 1, that is too many
	MinRequests int     // fewer canary requests in the window: no verdict
	// LatencyRatio is how many times the stable's p99 the canary's may
	// reach before it counts as failing; 0 turns the comparison off.
	LatencyRatio float64
}

// State is the outcome of a verdict. The zero value is NotEnough: no
// verdict yet.
type State int

const (
	// NotEnough: the canary had too few requests for a verdict; the light
	// stays green.
	NotEnough State = iota
	// Good: the canary fails less often than the policy allows.
	Good
	// Bad: the canary fails too often, and more often than stable, or it
	// is slower than stable by more than the policy allows; the light
	// turns red and, with auto_rollback, the canary is rolled back.
	Bad
	// Shared: the canary fails too often, but stable fails as often or
	// more, as when a database both versions use is down. Rolling back
	// would not help, so it is reported, not acted upon.
	Shared
)

var stateNames = [...]string{
	NotEnough: "not_enough_traffic",
	Good:      "good",
	Bad:       "bad",
	Shared:    "shared_failure",
}

// States are all the verdicts, for a list of every value (the metrics'
// verdict label, the status page's).
func States() []State { return []State{NotEnough, Good, Bad, Shared} }

// String returns the name the status JSON and the metrics use: "good",
// "bad", "not_enough_traffic" or "shared_failure".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// MarshalText is the JSON's spelling, String's; a State outside the four
// is an error rather than a name no reader knows.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("analysis: no name for verdict %s", s)
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText reads a name String returns.
func (s *State) UnmarshalText(text []byte) error {
	for i, name := range stateNames {
		if string(text) == name {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown verdict %q (want %s)", text, strings.Join(stateNames[:], ", "))
}

// Verdict is a judgement of the canary.
type Verdict struct {
	State State
	// Reason is one line with the numbers behind State, for the status and
	// for the log line of an automatic rollback.
	Reason string
}

// Judge compares the canary's counts with stable's over the same window.
// The canary is Bad when it had at least MinRequests requests, at least a
// share ErrorRate of them failed, and that share is above stable's: a
// version is only blamed for failures the other version does not have.
// Stable without requests has an error rate of 0, so a failing canary is
// then Bad: there is no evidence that the failure is shared.
//
// Stable is not held to MinRequests: when stable upstreams fail to connect,
// they leave the rotation after max_fails and stop getting requests, so a
// dead stable may show only a few, all failed, and rolling back to it would
// not help.
func Judge(canary, stable Counts, p Policy) Verdict {
	var v Verdict
	// A verdict needs at least one request, whatever the policy says.
	need := uint64(max(p.MinRequests, 1))
	cr, sr := canary.ErrorRate(), stable.ErrorRate()
	if canary.Requests < need {
		v.Reason = fmt.Sprintf("not enough traffic: canary %d requests in the window, need %d", canary.Requests, need)
		return v
	}
	c := fmt.Sprintf("canary %d/%d errors (%.1f%%)", canary.Errors, canary.Requests, 100*cr)
	s := fmt.Sprintf("stable %d/%d (%.1f%%)", stable.Errors, stable.Requests, 100*sr)
	limit := threshold(p.ErrorRate)
	switch {
	case !(cr >= p.ErrorRate):
		v.State, v.Reason = Good, c+" < "+limit
	// Without a single error a canary is good even under a policy of 0.
	case canary.Errors == 0:
		v.State, v.Reason = Good, c
	case cr > sr:
		v.State, v.Reason = Bad, c+" ≥ "+limit+" and worse than "+s
	default:
		v.State, v.Reason = Shared, c+" ≥ "+limit+" but "+s+" fails at least as much: a shared failure, not the canary's fault"
	}
	if v.State == Good {
		if slow, why := slower(canary, stable, p, need); slow {
			v.State, v.Reason = Bad, why
		}
	}
	return v
}

// LatencySamples is the fewest requests on each side whose p99s are
// compared: the p99 of fewer is their slowest request, which one scheduler
// hiccup on either side decides.
const LatencySamples = 100

// slower reports whether the canary's p99 exceeds LatencyRatio times the
// stable's, and says so with both numbers. Unlike the error rate, a
// latency needs a comparison: both sides must have had need requests, and
// at least LatencySamples.
func slower(canary, stable Counts, p Policy, need uint64) (bool, string) {
	need = max(need, LatencySamples)
	if p.LatencyRatio <= 0 || canary.Requests < need || stable.Requests < need {
		return false, ""
	}
	c, s := canary.Quantile(0.99), stable.Quantile(0.99)
	if float64(c) <= p.LatencyRatio*float64(s) {
		return false, ""
	}
	return true, fmt.Sprintf("canary p99 %s > %s × stable p99 %s", millis(c), strconv.FormatFloat(p.LatencyRatio, 'f', -1, 64), millis(s))
}

// millis formats a latency in milliseconds with what precision it has.
func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'g', 3, 64) + " ms"
}

// threshold formats an error rate as a percentage with one decimal, or two
// when the config asks for that precision: "5.0%", "0.25%".
func threshold(rate float64) string {
	s := strconv.FormatFloat(100*rate, 'f', 2, 64)
	return strings.TrimSuffix(s, "0") + "%"
}
