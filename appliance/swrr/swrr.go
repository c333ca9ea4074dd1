// Package swrr is nginx's smooth weighted round-robin, with nginx's failure
// bookkeeping (max_fails, fail_timeout, effective weight) and nginx Plus's
// slow_start. For the same weights, and no slow start, it picks the same
// sequence of peers as nginx's upstream module.
//
// The balancer keeps no clock of its own: callers pass the time, so tests
// drive it with a fake clock and the proxy reuses the time it already read.
package swrr

import (
	"sync"
	"sync/atomic"
	"time"
)

// MaxPeers is the most peers a Balancer takes; a Set holds that many.
const MaxPeers = 256

// Whole is a share of all picks, in hundredths of a percent: PickSplit's
// share of 1000 is 10%.
const Whole = 10000

// Peer is one server's configuration.
type Peer struct {
	Weight      int           // 0 means off (nginx's "down")
	MaxFails    int           // failures within FailTimeout that take it out; 0: never
	FailTimeout time.Duration // how long it stays out, and the window for MaxFails
	// SlowStart is how long a peer that joins takes to ramp up to its
	// weight: a new peer, one back from max_fails, or one the caller Joins.
	// 0 turns the ramp off.
	SlowStart time.Duration
}

// Set is a set of peer indexes: the peers a request already tried, or a
// mask of peers that must not be picked. The zero value is empty.
type Set [MaxPeers / 64]uint64

// Add puts peer i in the set.
func (s *Set) Add(i int) { s[i>>6] |= 1 << (uint(i) & 63) }

// Remove takes peer i out of the set.
func (s *Set) Remove(i int) { s[i>>6] &^= 1 << (uint(i) & 63) }

// Has reports whether peer i is in the set.
func (s *Set) Has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }

// Union adds every member of o to s.
func (s *Set) Union(o *Set) {
	for i := range s {
		s[i] |= o[i]
	}
}

// Balancer picks peers. It is safe for concurrent use and does not allocate
// on Pick or Done.
type Balancer struct {
	mu    sync.Mutex
	peers []state
	// lean is the group's current weight in PickSplit's two-way round-robin;
	// the rest's is -lean, as the currents of smooth round-robin sum to 0.
	lean int
}

// state is nginx's ngx_http_upstream_rr_peer_t, reduced to what
// round-robin needs. Times are UnixNano.
type state struct {
	Peer
	current   int
	effective int
	fails     int
	// failing is fails > 0, written with b.mu held, for Done to read
	// without it: a success on a peer with no failures changes nothing.
	// Pick's loop reads the plain fails.
	failing  atomic.Bool
	checked  int64
	accessed int64
	joined   int64 // when the slow start began; 0: at the next pick
}

// joinedLongAgo is the join time of a peer that served before it had a slow
// start: its ramp is over.
const joinedLongAgo = 1

// setFails sets p's failure count; b.mu is held.
func (p *state) setFails(n int) {
	p.fails = n
	p.failing.Store(n > 0)
}

// out reports whether max_fails has p out of the rotation at t.
func (p *state) out(t int64) bool {
	return p.MaxFails > 0 && p.fails >= p.MaxFails && t-p.checked <= int64(p.FailTimeout)
}

// ramp is the weight p's slow start lets it compete with at t, at least 1;
// a peer that has not joined yet joins now. Only for SlowStart > 0.
func (p *state) ramp(t int64) int {
	if p.joined == 0 {
		p.joined = t
	}
	elapsed := t - p.joined
	if elapsed >= int64(p.SlowStart) {
		return p.Weight
	}
	return max(1, int(int64(p.Weight)*max(elapsed, 0)/int64(p.SlowStart)))
}

// progress is how far p's slow start is at t, 0 to Whole, as ramp but in
// fixed point and without joining.
func (p *state) progress(t int64) int64 {
	if p.SlowStart <= 0 {
		return Whole
	}
	if p.joined == 0 {
		return 0
	}
	elapsed := t - p.joined
	if elapsed >= int64(p.SlowStart) {
		return Whole
	}
	return max(elapsed, 0) * Whole / int64(p.SlowStart)
}

// New returns a balancer over peers, in order; the order matters for ties,
// exactly as the order of server lines does in nginx. It panics on more than
// MaxPeers peers: the config loader rejects that first.
func New(peers []Peer) *Balancer {
	if len(peers) > MaxPeers {
		panic("swrr: too many peers")
	}
	b := &Balancer{peers: make([]state, len(peers))}
	for i, p := range peers {
		b.peers[i] = state{Peer: p, effective: p.Weight}
	}
	return b
}

// Pick chooses the next peer not in tried, adds it to tried and returns its
// index. A caller keeps peers out of the rotation (a rollback's canaries) by
// putting them in tried: skipped peers keep their round-robin state, so
// letting them back in resumes their sequence. When no peer can be picked it returns -1 and,
// as nginx does, clears every peer's failure count so that the next request
// finds them live again.
func (b *Balancer) Pick(tried *Set, now time.Time) int {
	return b.pick(tried, now, true)
}

// TryPick is Pick without nginx's reset: when no peer can be picked it
// returns -1 and leaves the failure counts alone. It is for a preference
// ("a stable peer if one is live") that a plain Pick follows when unmet.
func (b *Balancer) TryPick(tried *Set, now time.Time) int {
	return b.pick(tried, now, false)
}

func (b *Balancer) pick(tried *Set, now time.Time, reset bool) int {
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.next(tried, t)
	if i < 0 {
		if reset {
			b.forgive()
		}
		return -1
	}
	tried.Add(i)
	return i
}

// forgive is nginx's answer to a pick that found no peer: every peer's
// failure count cleared, so that the next request finds them live again.
// b.mu is held.
func (b *Balancer) forgive() {
	for i := range b.peers {
		b.peers[i].setFails(0)
	}
}

// next is one step of smooth round-robin among the peers not in skip; b.mu
// is held. Skipped peers keep their state.
func (b *Balancer) next(skip *Set, t int64) int {
	if len(b.peers) == 1 {
		// nginx's single-server upstream: max_fails does not apply.
		if p := &b.peers[0]; p.Weight > 0 && !skip.Has(0) {
			if p.SlowStart > 0 {
				p.ramp(t) // no one to compete with, but it joins: Share reads its progress
			}
			return 0
		}
		return -1
	}

	best, total := -1, 0
	for i := range b.peers {
		p := &b.peers[i]
		if skip.Has(i) || p.Weight == 0 || p.out(t) {
			continue
		}
		w := p.effective
		if p.SlowStart > 0 {
			w = min(w, p.ramp(t))
		}
		p.current += w
		total += w
		if p.effective < p.Weight {
			p.effective++
		}
		if best < 0 || p.current > b.peers[best].current {
			best = i
		}
	}
	if best < 0 {
		return -1
	}
	p := &b.peers[best]
	p.current -= total
	if t-p.checked > int64(p.FailTimeout) {
		p.checked = t
	}
	return best
}

// PickSplit is Pick with a share of the picks, share out of Whole, going to
// the peers in group and the rest to the others: a smooth two-way
// round-robin chooses the side (10% is every tenth pick, never two in a
// row), then smooth round-robin by weight among that side's peers, whose
// sequence the other side's picks leave alone. The share ramps up with the
// group's slow start (see Share). When the chosen side has no peer left to
// pick, the other side gets the pick.
func (b *Balancer) PickSplit(tried, group *Set, share int, now time.Time) int {
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	inGroup, inRest, share := b.sides(tried, group, share, t, true)
	var toGroup bool
	switch {
	case inGroup && inRest:
		// Two peers of weight share and Whole-share, the rest first: the
		// group's current after the step beats the rest's.
		rest := Whole - share
		toGroup = share > 0 && (rest == 0 || 2*b.lean+share-rest > 0)
		b.lean += share
		if toGroup {
			b.lean -= Whole
		}
	case inGroup:
		toGroup = true
	case !inRest:
		b.forgive()
		return -1
	}
	skip := *tried
	if toGroup {
		for i := range skip {
			skip[i] |= ^group[i]
		}
	} else {
		skip.Union(group)
	}
	i := b.next(&skip, t)
	if i >= 0 { // always: sides found a peer there
		tried.Add(i)
	}
	return i
}

// Share is the share of PickSplit's picks the peers in group get at now:
// share scaled by the group's slow start, the mean of its live peers'
// progress weighted by their weights.
func (b *Balancer) Share(group *Set, share int, now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _, share = b.sides(&Set{}, group, share, now.UnixNano(), false)
	return share
}

// sides reports whether the group and the rest have a peer not in tried
// that can be picked, and the group's share, clamped to 0..Whole and
// ramped; b.mu is held. join starts the slow start of peers that have not
// joined yet, as their first pick does.
func (b *Balancer) sides(tried, group *Set, share int, t int64, join bool) (inGroup, inRest bool, ramped int) {
	share = min(max(share, 0), Whole)
	var weight, progress int64
	for i := range b.peers {
		p := &b.peers[i]
		if tried.Has(i) || p.Weight == 0 || len(b.peers) > 1 && p.out(t) {
			continue
		}
		if !group.Has(i) {
			inRest = true
			continue
		}
		inGroup = true
		if join && p.SlowStart > 0 && p.joined == 0 {
			p.joined = t
		}
		weight += int64(p.Weight)
		progress += int64(p.Weight) * p.progress(t)
	}
	if weight == 0 {
		return inGroup, inRest, share
	}
	return inGroup, inRest, int(int64(share) * progress / (weight * Whole))
}

// Done reports how a request to peer i ended. failed means the peer itself
// failed (refused, reset, timed out); a 5xx answer is not a failure here.
func (b *Balancer) Done(i int, failed bool, now time.Time) {
	if len(b.peers) == 1 {
		return
	}
	p := &b.peers[i]
	if !failed && !p.failing.Load() {
		// The success branch below could only clear a count that is
		// already 0 (a new join too needs failures): the common case, done
		// without the lock. A failure recorded meanwhile is ordered after
		// this success, as it could have been with the lock.
		return
	}
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !failed {
		// A success after the last failure check makes the peer live again;
		// one that was out joins anew.
		if p.accessed < p.checked {
			if p.MaxFails > 0 && p.fails >= p.MaxFails {
				p.joined = t
			}
			p.setFails(0)
		}
		return
	}
	p.setFails(p.fails + 1)
	p.accessed = t
	p.checked = t
	if p.MaxFails > 0 {
		p.effective -= p.Weight / p.MaxFails
	}
	if p.effective < 0 {
		p.effective = 0
	}
}

// Down reports whether peer i is currently taken out by its failures.
func (b *Balancer) Down(i int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peers[i].out(now.UnixNano())
}

// Join starts peer i's slow start at now, as when it first joined: for a
// peer the caller kept out of the rotation and lets back in.
func (b *Balancer) Join(i int, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers[i].joined = now.UnixNano()
}

// Carry gives the peers of b that old also has (from[i] is peer i's index
// in old, or -1 for a new peer) old's round-robin position, failure state
// and join time, and b old's place in PickSplit's two-way round-robin, so
// that a reload neither restarts the sequence (a burst toward the first
// peers, as nginx's reload gives), nor forgives a failing peer, nor ramps
// up a peer again.
func (b *Balancer) Carry(old *Balancer, from []int) {
	old.mu.Lock()
	defer old.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lean = old.lean
	for i, j := range from {
		if j < 0 || i >= len(b.peers) || j >= len(old.peers) {
			continue
		}
		p, o := &b.peers[i], &old.peers[j]
		p.current = o.current
		p.setFails(o.fails)
		p.checked, p.accessed = o.checked, o.accessed
		p.joined = o.joined
		if o.SlowStart == 0 {
			// Without a slow start it has served at its weight all along.
			p.joined = joinedLongAgo
		}
		if o.effective < o.Weight {
			// Still recovering from a failure: keep recovering from there.
			p.effective = min(o.effective, p.Weight)
		}
	}
}
