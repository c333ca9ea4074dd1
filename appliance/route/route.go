// Package route decides, for every request, which upstream gets it: the one
// place where the canary's share of traffic is set. A Plan is the routing of
// one configuration in one mode (canary, rolled back, promoted), immutable
// once published; the Router swaps in a new Plan, whole, with one atomic
// store.
package route

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// Class is the status class of an attempt's answer, as /metrics labels
// its count: Class1xx to Class5xx for a status code, Failed for no answer
// or one whose body broke off.
type Class int

const (
	Failed Class = iota // no answer: refused, reset, timed out
	Class1xx
	Class2xx
	Class3xx
	Class4xx
	Class5xx
	// NumClasses is how many classes there are: a Class is below it.
	NumClasses
)

// ClassOf is the class of an attempt that got status, 0 for none.
func ClassOf(status int) Class {
	if status >= 100 && status < 600 {
		return Class(status / 100)
	}
	return Failed
}

// String is the class's label: "failed", or "1xx" to "5xx".
func (c Class) String() string {
	switch {
	case c == Failed:
		return "failed"
	case c > Failed && c < NumClasses:
		return strconv.Itoa(int(c)) + "xx"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Stats are one upstream's counters. They live as long as an upstream of
// that name is configured, across reloads.
//
// They are counted on the hot path, in atomics that every core touches, so
// what can be derived is: the requests and errors are sums of Classes, and
// the attempts in flight are those begun less those ended.
type Stats struct {
	Classes [NumClasses]atomic.Uint64 // attempts by the class of their answer
	Latency analysis.Histogram        // time to the response headers, since start
	// Window is the analysis window (canary.window); a reload that changes
	// the span replaces it.
	Window atomic.Pointer[analysis.Window]

	begun     atomic.Uint64 // attempts and tunnels begun
	abandoned atomic.Uint64 // those that ended without a Record

	// slowOver is the latency, in nanoseconds, above which an answer that
	// is no error counts as slow for the verdict (0: none does); the
	// daemon sets it four times a second from the stable's latency, and
	// slow counts the answers above it.
	slowOver atomic.Int64
	slow     atomic.Uint64
}

// Requests is how many attempts were sent to the upstream.
func (s *Stats) Requests() uint64 {
	var n uint64
	for i := range s.Classes {
		n += s.Classes[i].Load()
	}
	return n
}

// Errors is how many of them were errors (IsError): 5xx answers, and
// attempts that got no whole answer (refused, reset, timed out).
func (s *Stats) Errors() uint64 {
	return s.Classes[Failed].Load() + s.Classes[Class5xx].Load()
}

// Slow is how many answers that were no error took longer than the slow
// threshold of their moment (SetSlowOver).
func (s *Stats) Slow() uint64 { return s.slow.Load() }

// SetSlowOver sets the latency above which the upstream's answers count as
// slow from now on; analysis.Never, or 0, for none.
func (s *Stats) SetSlowOver(d time.Duration) {
	if d == analysis.Never {
		d = 0
	}
	s.slowOver.Store(int64(d))
}

// SlowOver is the latency set by SetSlowOver, analysis.Never for none.
func (s *Stats) SlowOver() time.Duration {
	if d := s.slowOver.Load(); d > 0 {
		return time.Duration(d)
	}
	return analysis.Never
}

// Begin counts an attempt (or a tunnel) on the upstream as in flight until
// Record, or Abandon, ends it.
func (s *Stats) Begin() { s.begun.Add(1) }

// Abandon ends an attempt that is not Recorded: one nobody failed (the
// client went away), or a tunnel that closed.
func (s *Stats) Abandon() { s.abandoned.Add(1) }

// InFlight is how many attempts and tunnels are in flight on the upstream.
func (s *Stats) InFlight() int64 {
	// The ended ones first: each was begun before it ended, so reading them
	// before those begun never gives less than none.
	ended := s.abandoned.Load() + s.Requests()
	return int64(s.begun.Load() - ended)
}

// IsError reports whether an attempt counts as an error of its upstream:
// a 5xx answer, or no whole answer (class Failed).
func IsError(status int, failed bool) bool {
	c := ClassOf(status)
	return failed || c == Failed || c == Class5xx
}

// Record accounts for one attempt that ended at now, and that Begin
// counted in flight: status is the upstream's status code (0 for none),
// failed whether the upstream failed, before its headers or in its body, d
// the time to its response headers or its failure. A failed attempt counts
// in class Failed whatever its status.
func (s *Stats) Record(now time.Time, status int, failed bool, d time.Duration) {
	c := ClassOf(status)
	if failed {
		c = Failed
	}
	if c != Failed {
		s.Latency.Observe(d)
	}
	if over := s.slowOver.Load(); over > 0 && int64(d) > over && c != Failed && c != Class5xx {
		s.slow.Add(1)
	}
	if w := s.Window.Load(); w != nil {
		w.Record(now, c == Failed || c == Class5xx, d)
	}
	// The class last: it ends the attempt in flight (InFlight), so whoever
	// sees the upstream idle sees every other count of the attempt too.
	s.Classes[c].Add(1)
}

// ResetWindow gives the upstream a new, empty analysis window of the same
// span: a release judged afresh counts from now.
func (s *Stats) ResetWindow() {
	if w := s.Window.Load(); w != nil {
		s.Window.Store(analysis.NewWindow(w.Span()))
	}
}

// Upstream is one configured upstream in a Plan.
type Upstream struct {
	config.Upstream
	Index int
	Stats *Stats
	// Origin is the URL's scheme and host ("http://10.0.0.5:8001"): what a
	// data plane keys its connection pools by, across reloads.
	Origin string
}

// Plan is where new requests may go: the upstreams of one config generation
// and the mode that applies to them. A published Plan is never changed: a
// reload, a rollback, a resume, a promotion, a health check's verdict and a
// rollout step each publish a new one. Two things a Plan points to do
// change, and are documented as such where they live: each upstream's
// Stats (its counters and analysis window), and the generation's Rotation,
// shared by its plans.
type Plan struct {
	Upstreams []*Upstream
	HasCanary bool
	Mode      state.Mode

	rot      *Rotation
	canary   swrr.Set // indexes of canary upstreams
	stable   swrr.Set
	excluded swrr.Set // what Mode and the health checks keep out of the rotation
	down     swrr.Set // upstreams whose health check has not passed
	split    split    // users by key (canary.sticky_*, override_header)
	// stepped: canary.steps sets the canary's share (split.share), not
	// the weights; see AtStep.
	stepped bool
}

// NewPlan builds the plan for cfg in mode m. Upstreams that prev also had
// (by name) keep their counters and their place in the round-robin.
func NewPlan(cfg *config.Config, m state.Mode, prev *Plan) *Plan {
	old := map[string]*Upstream{}
	if prev != nil {
		for _, u := range prev.Upstreams {
			old[u.Name] = u
		}
	}
	from := make([]int, len(cfg.Upstreams))
	span := analysis.NewWindow(cfg.Canary.Window).Span()
	p := &Plan{}
	peers := make([]swrr.Peer, len(cfg.Upstreams))
	for i, cu := range cfg.Upstreams {
		st := new(Stats)
		from[i] = -1
		if o := old[cu.Name]; o != nil {
			st, from[i] = o.Stats, o.Index
		}
		if w := st.Window.Load(); w == nil || w.Span() != span {
			st.Window.Store(analysis.NewWindow(cfg.Canary.Window))
		}
		p.Upstreams = append(p.Upstreams, &Upstream{Upstream: cu, Index: i, Stats: st, Origin: cu.URL.Scheme + "://" + cu.URL.Host})
		// An upstream with a health check takes traffic once the check
		// passed: the same check in prev carries its outcome over.
		if hc := cu.HealthCheck(); hc != "" {
			if o := old[cu.Name]; o == nil || o.HealthCheck() != hc || prev.down.Has(o.Index) {
				p.down.Add(i)
			}
		}
		peers[i] = swrr.Peer{Weight: cu.Weight, MaxFails: cu.MaxFails, FailTimeout: cu.FailTimeout, SlowStart: cu.SlowStart}
		if cu.Role == config.Canary {
			p.canary.Add(i)
			p.HasCanary = true
		} else {
			p.stable.Add(i)
		}
	}
	p.rot = &Rotation{bal: swrr.New(peers), n: len(peers), canary: p.canary}
	if prev != nil {
		p.rot.bal.Carry(prev.rot.bal, from)
	}
	p.Mode, p.excluded = m, p.exclusions(m)
	canary, all := p.weights()
	p.split = newSplit(cfg, canary, all)
	return p
}

// weights is the canary upstreams' weight and all upstreams' weight.
func (p *Plan) weights() (canary, all int) {
	for _, u := range p.Upstreams {
		all += u.Weight
		if u.Role == config.Canary {
			canary += u.Weight
		}
	}
	return canary, all
}

// WithMode is the same generation's plan in mode m.
func (p *Plan) WithMode(m state.Mode) *Plan {
	next := *p
	next.Mode, next.excluded = m, p.exclusions(m)
	return &next
}

// AtStep is the same generation's plan with the canary's share at a
// progressive rollout's step, percent of new requests: keyless requests
// are split between the roles smoothly (10% is one request in every ten,
// evenly spaced) and by SWRR within each role, and users with a key go by
// their bucket against the same share.
func (p *Plan) AtStep(percent float64) *Plan {
	next := *p
	next.stepped = true
	next.split.share = uint32(min(max(percent, 0), 100)*Buckets/100 + 0.5)
	return &next
}

// Rotation is the round-robin of one config generation, shared by its
// plans: its position, failure counts and slow starts move with every pick,
// every failure and every Join, as nginx's peers do. It is the mutable part
// of routing, kept apart from the plans, which never change.
type Rotation struct {
	bal    *swrr.Balancer
	n      int      // upstreams
	canary swrr.Set // which of them are canaries
}

// Rotation is the round-robin p shares with its generation.
func (p *Plan) Rotation() *Rotation { return p.rot }

// Join starts the slow start of every upstream of role at now, as if they
// had just joined: for a canary that comes back into the rotation.
func (r *Rotation) Join(role config.Role, now time.Time) {
	for i := range r.n {
		if r.canary.Has(i) == (role == config.Canary) {
			r.bal.Join(i, now)
		}
	}
}

// WithHealth is the same plan with the upstream named name in the rotation
// (up) or out of it, as its health check says at now; p itself when it has
// no health check of that name. An upstream that comes up joins: its
// slow_start begins.
func (p *Plan) WithHealth(name string, up bool, now time.Time) *Plan {
	for _, u := range p.Upstreams {
		if u.Name != name || u.HealthPath == "" || p.down.Has(u.Index) == !up {
			continue
		}
		next := *p
		if up {
			next.down.Remove(u.Index)
			p.rot.bal.Join(u.Index, now)
		} else {
			next.down.Add(u.Index)
		}
		next.excluded = next.exclusions(next.Mode)
		return &next
	}
	return p
}

// exclusions is what mode m and the health checks keep out of this plan's
// rotation.
func (p *Plan) exclusions(m state.Mode) swrr.Set {
	s := p.down
	switch m {
	case state.RolledBack:
		s.Union(&p.canary)
	case state.Promoted:
		s.Union(&p.stable)
	}
	return s
}

// Pick chooses an upstream for a new request. tried holds the upstreams
// this request already tried; Pick adds the one it returns. It returns nil
// when no upstream is left.
func (p *Plan) Pick(tried *swrr.Set, now time.Time) *Upstream {
	if p.stepped && p.Mode == state.Canary {
		avoid := p.excluded
		avoid.Union(tried)
		if i := p.rot.bal.PickSplit(&avoid, &p.canary, int(p.split.share), now); i >= 0 {
			tried.Add(i)
			return p.Upstreams[i]
		}
		return nil
	}
	return p.pick(tried, p.excluded, now)
}

// PickRetry chooses an upstream for the retry of a request whose upstream
// failed: a stable one when the mode allows it, so that the client does not
// meet the canary's failure twice. mode is the router's mode now, which may
// be newer than the plan the request started on: a rollback reaches the
// retries of requests already in flight too.
func (p *Plan) PickRetry(tried *swrr.Set, mode state.Mode, now time.Time) *Upstream {
	return p.prefer(tried, p.exclusions(mode), &p.canary, now)
}

// prefer picks outside excluded and outside not when it can, without
// nginx's reset of the failure counts, and else as pick does: a preference,
// not a refusal.
func (p *Plan) prefer(tried *swrr.Set, excluded swrr.Set, not *swrr.Set, now time.Time) *Upstream {
	avoid := excluded
	avoid.Union(tried)
	avoid.Union(not)
	if i := p.rot.bal.TryPick(&avoid, now); i >= 0 {
		tried.Add(i)
		return p.Upstreams[i]
	}
	return p.pick(tried, excluded, now)
}

func (p *Plan) pick(tried *swrr.Set, excluded swrr.Set, now time.Time) *Upstream {
	excluded.Union(tried)
	if i := p.rot.bal.Pick(&excluded, now); i >= 0 {
		tried.Add(i)
		return p.Upstreams[i]
	}
	return nil
}

// Done reports the end of a request to u; failed means u itself failed
// (refused, reset, timed out), which counts toward its max_fails.
func (p *Plan) Done(u *Upstream, failed bool, now time.Time) {
	p.rot.bal.Done(u.Index, failed, now)
}

// Failing reports whether u's failures (max_fails within fail_timeout)
// hold it out of the rotation at now.
func (p *Plan) Failing(u *Upstream, now time.Time) bool { return p.rot.bal.Down(u.Index, now) }

// Healthy reports whether u is in the rotation as far as its failures and
// its health check go.
func (p *Plan) Healthy(u *Upstream, now time.Time) bool {
	return !p.rot.bal.Down(u.Index, now) && !p.down.Has(u.Index)
}

// Recent sums the analysis windows of each role's upstreams at now.
func (p *Plan) Recent(now time.Time) (canary, stable analysis.Counts) {
	for _, u := range p.Upstreams {
		w := u.Stats.Window.Load()
		if w == nil {
			continue
		}
		if u.Role == config.Canary {
			canary = canary.Add(w.Snapshot(now))
		} else {
			stable = stable.Add(w.Snapshot(now))
		}
	}
	return canary, stable
}

// CanaryPercent is the share of new requests the canary gets under this
// plan at now: its rollout step's, as far as a slow start lets it, or its
// share of the configured weights.
func (p *Plan) CanaryPercent(now time.Time) float64 {
	switch {
	case p.Mode == state.Promoted:
		return 100
	case p.Mode == state.Canary && p.stepped:
		return float64(p.rot.bal.Share(&p.canary, int(p.split.share), now)) * 100 / Buckets
	case p.Mode == state.Canary:
		canary, all := p.weights()
		if all == 0 {
			return 0
		}
		return float64(canary) * 100 / float64(all)
	}
	return 0
}

// Router holds the plan new requests follow.
type Router struct {
	mu   sync.Mutex // serializes the writers; the hot path only loads plan
	plan atomic.Pointer[Plan]
}

// NewRouter returns a router serving p.
func NewRouter(p *Plan) *Router {
	r := &Router{}
	r.plan.Store(p)
	return r
}

// Plan is the plan new requests follow now.
func (r *Router) Plan() *Plan { return r.plan.Load() }

// Publish makes p the plan of every request that starts after it returns,
// and returns the plan it replaced. Requests that already picked an
// upstream from the old plan finish there.
func (r *Router) Publish(p *Plan) *Plan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.plan.Swap(p)
}

// SetStep publishes the current plan at a rollout step's percent (AtStep).
func (r *Router) SetStep(percent float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan.Store(r.plan.Load().AtStep(percent))
}

// SetMode publishes the current plan in mode m. Once it returns, no pick
// that starts afterwards, first try or retry, gets an upstream m excludes.
func (r *Router) SetMode(m state.Mode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan.Store(r.plan.Load().WithMode(m))
}
