package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conns bounds the client connections held at once. A connection that
// waits for a request (new and silent, in the middle of its head, or idle
// between keep-alive requests) costs memory and serves nobody, so when the
// limit is reached the one that has waited longest is closed to make room,
// as nginx closes idle keep-alive connections when worker_connections run
// out. Only when every connection is busy with a request is a new one
// refused. Thousands of half-open connections thus cannot keep a
// well-behaved client out, nor hold more than the limit's memory.
type conns struct {
	max int

	mu  sync.Mutex
	all map[*clientConn]struct{}

	evicted atomic.Uint64 // waiting connections closed to make room
	refused atomic.Uint64 // new connections closed because all were busy
	warned  atomic.Int64  // unix seconds of the last warning logged
}

func newConns(max int) *conns {
	return &conns{max: max, all: map[*clientConn]struct{}{}}
}

// admit takes c into the set, making room if the set is full; false when
// there is none, and c must be closed.
func (s *conns) admit(c *clientConn) bool {
	c.waitFrom(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && len(s.all) >= s.max {
		victim := s.longestWaiting()
		if victim == nil {
			s.refused.Add(1)
			return false
		}
		delete(s.all, victim)
		victim.Conn.Close() // its read fails; fasthttp ends it as a client gone
		s.evicted.Add(1)
	}
	s.all[c] = struct{}{}
	c.set = s
	return true
}

// longestWaiting is the waiting connection that has waited longest, or
// nil when every connection is busy. A scan is linear, but it runs only
// when the set is full, once per connection accepted then.
func (s *conns) longestWaiting() *clientConn {
	var victim *clientConn
	oldest := int64(0)
	for c := range s.all {
		if since := c.since.Load(); since != 0 && (victim == nil || since < oldest) {
			victim, oldest = c, since
		}
	}
	return victim
}

func (s *conns) drop(c *clientConn) {
	s.mu.Lock()
	delete(s.all, c)
	s.mu.Unlock()
}

// count is the number of client connections held.
func (s *conns) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// shouldWarn reports whether a full set is worth a log line now: at most
// one every ten seconds, since an attack would otherwise flood the journal.
func (s *conns) shouldWarn() bool {
	now := time.Now().Unix()
	last := s.warned.Load()
	return now-last >= 10 && s.warned.CompareAndSwap(last, now)
}

// ConnStats are the client connections' counts, for metrics.
type ConnStats struct {
	Open    int    // held now
	Max     int    // the limit; 0 for none
	Evicted uint64 // waiting connections closed to make room for new ones
	Refused uint64 // new connections closed because every one was busy
}

// Conns reports the client connections' counts.
func (p *Proxy) Conns() ConnStats {
	return ConnStats{Open: p.conns.count(), Max: p.conns.max,
		Evicted: p.conns.evicted.Load(), Refused: p.conns.refused.Load()}
}

// waitFrom marks c as waiting for a request since t; busy marks it as
// serving one. A busy connection is never evicted.
func (c *clientConn) waitFrom(t time.Time) { c.since.Store(t.UnixNano()) }
func (c *clientConn) busy()                { c.since.Store(0) }

// Close takes c out of its set, once.
func (c *clientConn) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.set != nil {
		c.set.drop(c)
	}
	return c.Conn.Close()
}

var _ net.Conn = (*clientConn)(nil)
