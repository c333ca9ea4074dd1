// Package swrr is nginx's smooth weighted round-robin, with nginx's failure
// bookkeeping (max_fails, fail_timeout, effective weight). For the same
// weights it picks the same sequence of peers as nginx's upstream module.
//
// The balancer keeps no clock of its own: callers pass the time, so tests
// drive it with a fake clock and the proxy reuses the time it already read.
package swrr

import (
	"sync"
	"time"
)

// MaxPeers is the most peers a Balancer takes; a Set holds that many.
const MaxPeers = 256

// Peer is one server's configuration.
type Peer struct {
	Weight      int           // 0 means off (nginx's "down")
	MaxFails    int           // failures within FailTimeout that take it out; 0: never
	FailTimeout time.Duration // how long it stays out, and the window for MaxFails
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
}

// state is nginx's ngx_http_upstream_rr_peer_t, reduced to what
// round-robin needs. Times are UnixNano.
type state struct {
	Peer
	current   int
	effective int
	fails     int
	checked   int64
	accessed  int64
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

	if len(b.peers) == 1 {
		// nginx's single-server upstream: max_fails does not apply.
		if p := &b.peers[0]; p.Weight > 0 && !tried.Has(0) {
			tried.Add(0)
			return 0
		}
		return -1
	}

	best, total := -1, 0
	for i := range b.peers {
		p := &b.peers[i]
		if tried.Has(i) || p.Weight == 0 {
			continue
		}
		if p.MaxFails > 0 && p.fails >= p.MaxFails && t-p.checked <= int64(p.FailTimeout) {
			continue
		}
		p.current += p.effective
		total += p.effective
		if p.effective < p.Weight {
			p.effective++
		}
		if best < 0 || p.current > b.peers[best].current {
			best = i
		}
	}
	if best < 0 {
		if reset {
			for i := range b.peers {
				b.peers[i].fails = 0
			}
		}
		return -1
	}
	p := &b.peers[best]
	p.current -= total
	if t-p.checked > int64(p.FailTimeout) {
		p.checked = t
	}
	tried.Add(best)
	return best
}

// Done reports how a request to peer i ended. failed means the peer itself
// failed (refused, reset, timed out); a 5xx answer is not a failure here.
func (b *Balancer) Done(i int, failed bool, now time.Time) {
	if len(b.peers) == 1 {
		return
	}
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := &b.peers[i]
	if !failed {
		// A success after the last failure check makes the peer live again.
		if p.accessed < p.checked {
			p.fails = 0
		}
		return
	}
	p.fails++
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
	p := &b.peers[i]
	return p.MaxFails > 0 && p.fails >= p.MaxFails && now.UnixNano()-p.checked <= int64(p.FailTimeout)
}

// Carry gives the peers of b that old also has (from[i] is peer i's index
// in old, or -1 for a new peer) old's round-robin position and failure
// state, so that a reload neither restarts the sequence (a burst toward the
// first peers, as nginx's reload gives) nor forgives a failing peer.
func (b *Balancer) Carry(old *Balancer, from []int) {
	old.mu.Lock()
	defer old.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, j := range from {
		if j < 0 || i >= len(b.peers) || j >= len(old.peers) {
			continue
		}
		p, o := &b.peers[i], &old.peers[j]
		p.current = o.current
		p.fails, p.checked, p.accessed = o.fails, o.checked, o.accessed
		if o.effective < o.Weight {
			// Still recovering from a failure: keep recovering from there.
			p.effective = min(o.effective, p.Weight)
		}
	}
}
