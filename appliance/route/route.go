// Package route decides, for every request, which upstream gets it: the one
// place where the canary's share of traffic is set. A Table is the routing
// for one configuration; the Router holds the current Table and the mode
// (canary, rolled back, promoted) and swaps both atomically.
package route

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// Stats are one upstream's counters. They live as long as an upstream of
// that name is configured, across reloads.
type Stats struct {
	Requests atomic.Uint64 // attempts that were sent to it
	Errors   atomic.Uint64 // 5xx answers, refused or reset connections, timeouts
	InFlight atomic.Int64
	// Classes counts answers by status class: [1] to [5] for 1xx to 5xx,
	// [0] for attempts that got no answer (refused, reset, timed out).
	Classes [6]atomic.Uint64
	Latency analysis.Histogram // time to the response headers, since start
	// Window is the analysis window (canary.window); a reload that changes
	// the span replaces it.
	Window atomic.Pointer[analysis.Window]
}

// IsError reports whether an attempt counts as an error of its upstream:
// a 5xx answer, or no answer at all.
func IsError(status int, failed bool) bool { return failed || status >= 500 }

// Record accounts for one attempt that ended at now: status is the
// upstream's status code (0 for none), failed whether the upstream failed,
// d the time to its response headers or its failure.
func (s *Stats) Record(now time.Time, status int, failed bool, d time.Duration) {
	s.Requests.Add(1)
	isErr := IsError(status, failed)
	if isErr {
		s.Errors.Add(1)
	}
	if status >= 100 && status < 600 {
		s.Classes[status/100].Add(1)
		s.Latency.Observe(d)
	} else {
		s.Classes[0].Add(1)
	}
	if w := s.Window.Load(); w != nil {
		w.Record(now, isErr, d)
	}
}

// Transport is a data-plane engine's connection pool to one upstream. The
// routing core keeps it with the upstream and never looks inside.
type Transport interface {
	// Close releases idle connections; requests in flight finish first.
	Close()
}

// Upstream is one configured upstream in a Table.
type Upstream struct {
	config.Upstream
	Index     int
	Stats     *Stats
	Transport Transport // set by the engine before the table is published
}

// Table is the routing for one configuration generation. Its upstream list
// never changes; only the balancer state inside moves.
type Table struct {
	Generation uint64
	Upstreams  []*Upstream
	HasCanary  bool

	bal    *swrr.Balancer
	canary swrr.Set // indexes of canary upstreams
	stable swrr.Set
}

// NewTable builds the table for cfg. Upstreams that prev also had (by name)
// keep their counters and their place in the round-robin.
func NewTable(cfg *config.Config, generation uint64, prev *Table) *Table {
	old := map[string]*Upstream{}
	if prev != nil {
		for _, u := range prev.Upstreams {
			old[u.Name] = u
		}
	}
	from := make([]int, len(cfg.Upstreams))
	span := analysis.NewWindow(cfg.Canary.Window).Span()
	t := &Table{Generation: generation}
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
		t.Upstreams = append(t.Upstreams, &Upstream{Upstream: cu, Index: i, Stats: st})
		peers[i] = swrr.Peer{Weight: cu.Weight, MaxFails: cu.MaxFails, FailTimeout: cu.FailTimeout}
		if cu.Role == config.Canary {
			t.canary.Add(i)
			t.HasCanary = true
		} else {
			t.stable.Add(i)
		}
	}
	t.bal = swrr.New(peers)
	if prev != nil {
		t.bal.Carry(prev.bal, from)
	}
	return t
}

// ResetWindows gives the upstreams of role a new, empty analysis window.
func (t *Table) ResetWindows(role config.Role) {
	for _, u := range t.Upstreams {
		if w := u.Stats.Window.Load(); w != nil && u.Role == role {
			u.Stats.Window.Store(analysis.NewWindow(w.Span()))
		}
	}
}

// Pick chooses an upstream for a new request. tried holds the upstreams
// this request already tried; Pick adds the one it returns. It returns nil
// when no upstream is left.
func (t *Table) Pick(tried *swrr.Set, now time.Time) *Upstream {
	if i := t.bal.Pick(tried, now); i >= 0 {
		return t.Upstreams[i]
	}
	return nil
}

// PickRetry chooses an upstream for the retry of a request whose upstream
// failed: a stable one when the mode allows it, so that the client does not
// meet the canary's failure twice.
func (t *Table) PickRetry(tried *swrr.Set, now time.Time) *Upstream {
	avoid := *tried
	avoid.Union(&t.canary)
	if i := t.bal.TryPick(&avoid, now); i >= 0 {
		tried.Add(i)
		return t.Upstreams[i]
	}
	return t.Pick(tried, now)
}

// Done reports the end of a request to u; failed means u itself failed
// (refused, reset, timed out), which counts toward its max_fails.
func (t *Table) Done(u *Upstream, failed bool, now time.Time) {
	t.bal.Done(u.Index, failed, now)
}

// Healthy reports whether u is in the rotation as far as its failures go.
func (t *Table) Healthy(u *Upstream, now time.Time) bool {
	return !t.bal.Down(u.Index, now)
}

// CanaryPercent is the share of new requests the canary gets in mode m,
// from the configured weights.
func (t *Table) CanaryPercent(m state.Mode) float64 {
	switch m {
	case state.Promoted:
		return 100
	case state.Canary:
		var canary, all int
		for _, u := range t.Upstreams {
			all += u.Weight
			if u.Role == config.Canary {
				canary += u.Weight
			}
		}
		if all == 0 {
			return 0
		}
		return float64(canary) * 100 / float64(all)
	}
	return 0
}

// apply sets the balancer's exclusions for mode m.
func (t *Table) apply(m state.Mode) {
	switch m {
	case state.RolledBack:
		t.bal.Exclude(t.canary)
	case state.Promoted:
		t.bal.Exclude(t.stable)
	default:
		t.bal.Exclude(swrr.Set{})
	}
}

// Router holds the current table and mode.
type Router struct {
	mu    sync.Mutex // serializes Publish and SetMode; the hot path does not take it
	table atomic.Pointer[Table]
	mode  atomic.Value // state.Mode
	// prev is the table before the current one: requests that started on
	// it may still retry on it, so a mode change reaches it too.
	prev *Table
}

// NewRouter returns a router serving t in mode m.
func NewRouter(t *Table, m state.Mode) *Router {
	r := &Router{}
	t.apply(m)
	r.mode.Store(m)
	r.table.Store(t)
	return r
}

// Table is the current table.
func (r *Router) Table() *Table { return r.table.Load() }

// Mode is the current mode.
func (r *Router) Mode() state.Mode { return r.mode.Load().(state.Mode) }

// Publish makes t (in mode m) the table for every request that starts after
// it returns, and returns the table it replaced. Requests that already
// picked an upstream from the old table finish there.
func (r *Router) Publish(t *Table, m state.Mode) *Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	t.apply(m)
	r.mode.Store(m)
	r.prev = r.table.Swap(t)
	return r.prev
}

// SetMode switches the mode. Once it returns, no request that starts picking
// afterwards can get an upstream the mode excludes.
func (r *Router) SetMode(m state.Mode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.table.Load().apply(m)
	if r.prev != nil {
		r.prev.apply(m)
	}
	r.mode.Store(m)
}
