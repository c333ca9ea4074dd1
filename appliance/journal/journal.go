// Package journal records the requests canary upstreams served, so that an
// incident report can say what a bad version touched. The journal is a
// bounded ring in memory of blocks of packed records (see codec.go),
// written on the request path without allocating and holding no pointers
// (the garbage collector never scans it), read a block at a time so that a
// report never holds up a request for long.
package journal

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of what one record keeps: longer values are cut, and the record
// says so. A request id longer than IDMax is not taken from a client (the
// proxy makes its own), so ids are never cut.
const (
	IDMax     = 64
	KeyMax    = 64
	MethodMax = 8
	PathMax   = 256
)

// Entry is one request a canary upstream served, as the proxy hands it
// over. The byte slices may be the proxy's own buffers: Add copies them.
type Entry struct {
	Time      time.Time // when the request arrived
	Duration  time.Duration
	RequestID []byte
	Method    []byte
	Path      []byte // without the query string
	UserKey   []byte // the sticky header or cookie; nil without one
	Status    int    // the upstream's status; 0 when it gave none
	BytesIn   int64  // request body bytes
	BytesOut  int64  // response body bytes
	Upstream  string
	Version   string // canary.version
	// Body is the start of a non-idempotent request's body when
	// journal.bodies is on (see BodyLimit), nil otherwise.
	Body          []byte
	BodyTruncated bool
}

// Record is a kept Entry, as reports and the journal file show it.
type Record struct {
	Seq           uint64    `json:"seq"` // 1, 2, ... in the order the requests ended
	Time          time.Time `json:"time"`
	RequestID     string    `json:"request_id"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	PathTruncated bool      `json:"path_truncated,omitempty"`
	Status        int       `json:"status"`
	BytesIn       int64     `json:"bytes_in"`
	BytesOut      int64     `json:"bytes_out"`
	DurationMs    float64   `json:"duration_ms"`
	Upstream      string    `json:"upstream"`
	Version       string    `json:"version"`
	User          string    `json:"user,omitempty"`
	Body          string    `json:"body,omitempty"`
	BodyTruncated bool      `json:"body_truncated,omitempty"`
}

// bodySlot is a kept request body, by the seq of its record.
type bodySlot struct {
	seq       uint64
	data      []byte
	truncated bool
}

// Journal is the ring. Its zero value is not usable; see New.
type Journal struct {
	mu      sync.Mutex
	records int      // how many of the newest records are kept
	budget  int      // how many bytes of blocks at most
	size    int      // of a block
	blocks  []*block // oldest first; the last is being filled
	spare   *block   // a dropped block, for the next one
	enc     encoder  // the last block's
	seq     uint64   // of the newest record
	names   []string
	index   map[string]uint16
	bodies  []bodySlot
	limit   int          // body bytes kept per request; j.mu
	limitA  atomic.Int64 // the same, for BodyLimit without the lock
}

// block is records seq first to first+n-1, packed in mem[:used].
type block struct {
	mem   []byte
	used  int
	first uint64
	n     int
}

// BytesPerRecord bounds the journal's memory: a journal of N records never
// takes more than N times this in blocks (but for two blocks at least). A
// typical canary request takes about 20 bytes; only records full of long,
// unlike paths, keys and ids reach the bound, and then fewer than N are
// kept.
const BytesPerRecord = 256

// maxBlock is a block's size in a journal of a few hundred records or
// more: the most a reader copies per hold of the lock.
const maxBlock = 64 << 10

// maxBodies is how many request bodies are kept at most, whatever the
// number of records: bodies are what takes memory.
const maxBodies = 1000

// New returns a journal of the newest records entries, keeping up to
// bodyLimit bytes of each non-idempotent request's body (0: none). A
// journal of 0 records keeps nothing. Memory is taken a block at a time
// as records arrive, and given back as blocks fall out of the ring.
func New(records, bodyLimit int) *Journal {
	j := &Journal{records: max(records, 0), index: map[string]uint16{}}
	if j.records > 0 {
		j.size = min(max(j.records*BytesPerRecord/8, 4<<10), maxBlock)
		j.budget = max(j.records*BytesPerRecord, 2*j.size)
	}
	j.SetBodyLimit(bodyLimit)
	return j
}

// SetBodyLimit changes how many bytes of each non-idempotent request body
// are kept from now on (journal.bodies, which a reload applies); 0 stops
// keeping them and lets the kept ones go.
func (j *Journal) SetBodyLimit(n int) {
	if j == nil || j.records == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case n <= 0:
		j.bodies, j.limit = nil, 0
	case j.bodies == nil:
		j.bodies, j.limit = make([]bodySlot, min(j.records, maxBodies)), n
	default:
		j.limit = n
	}
	j.limitA.Store(int64(j.limit))
}

// BodyLimit is how many bytes of a non-idempotent request's body Add
// keeps; 0 when bodies are off, so the proxy copies none.
func (j *Journal) BodyLimit() int {
	if j == nil {
		return 0
	}
	return int(j.limitA.Load())
}

// Add records e. It does not allocate, but for a body, the first time it
// sees an upstream or version name, and for a new block's memory.
func (j *Journal) Add(e *Entry) {
	if j == nil || j.records == 0 {
		return
	}
	var body []byte
	if e.Body != nil {
		// Copied before the lock; a limit changed meanwhile applies to
		// the next body.
		body = append([]byte(nil), e.Body...)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	b := j.room()
	up, ver := j.name(e.Upstream), j.name(e.Version)
	b.used = len(j.enc.encode(b.mem[:b.used], e, up, ver))
	b.n++
	if body != nil && len(j.bodies) > 0 {
		s := &j.bodies[int((j.seq-1)%uint64(len(j.bodies)))]
		*s = bodySlot{seq: j.seq, data: body[:min(len(body), j.limit)], truncated: e.BodyTruncated || len(body) > j.limit}
	}
}

// room returns the block the record j.seq goes in: the last one, or a new
// one when that has not maxRecord bytes left. Blocks fall out of the ring
// oldest first, as long as those left hold j.records records, and so that
// the blocks stay within the budget. j.mu is held.
func (j *Journal) room() *block {
	if n := len(j.blocks); n > 0 && j.blocks[n-1].used+maxRecord <= len(j.blocks[n-1].mem) {
		return j.blocks[n-1]
	}
	for len(j.blocks) > 0 {
		kept := int(j.seq - 1 - j.blocks[0].first + 1 - uint64(j.blocks[0].n))
		if kept < j.records && (len(j.blocks)+1)*j.size <= j.budget {
			break
		}
		j.drop()
	}
	b := j.spare
	j.spare = nil
	if b == nil {
		b = &block{mem: newBlock(j.size)}
	}
	b.used, b.first, b.n = 0, j.seq, 0
	j.blocks = append(j.blocks, b)
	j.enc.reset()
	return b
}

// drop lets the oldest block go; the first spare one is kept for the next
// block, and any other is given back. j.mu is held.
func (j *Journal) drop() {
	b := j.blocks[0]
	j.blocks = slices.Delete(j.blocks, 0, 1)
	if j.spare == nil {
		j.spare = b
		return
	}
	freeBlock(b.mem)
}

// name interns a name; j.mu is held.
func (j *Journal) name(s string) uint16 {
	if i, ok := j.index[s]; ok {
		return i
	}
	if len(j.names) == 1<<16-1 {
		return 0
	}
	j.names = append(j.names, s)
	j.index[s] = uint16(len(j.names) - 1)
	return uint16(len(j.names) - 1)
}

// Seq is the sequence number of the newest record, 0 before the first.
func (j *Journal) Seq() uint64 {
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

// oldest is the sequence number of the oldest record kept: of the newest
// j.records, those the blocks still hold. j.mu is held.
func (j *Journal) oldest() uint64 {
	o := uint64(1)
	if j.seq > uint64(j.records) {
		o = j.seq - uint64(j.records) + 1
	}
	if len(j.blocks) > 0 && j.blocks[0].first > o {
		o = j.blocks[0].first
	}
	return o
}

// After returns the records with a sequence number above seq that match
// keep (nil keeps all), oldest first, and lost: how many records after seq
// the ring had already dropped. It takes the lock a block at a time.
func (j *Journal) After(seq uint64, keep func(*Record) bool) (records []Record, lost uint64) {
	if j == nil || j.records == 0 {
		return nil, 0
	}
	var buf []byte
	next := seq + 1
	for {
		j.mu.Lock()
		if oldest := j.oldest(); next < oldest {
			lost += oldest - next
			next = oldest
		}
		if next > j.seq {
			j.mu.Unlock()
			return records, lost
		}
		i, _ := slices.BinarySearchFunc(j.blocks, next, func(b *block, seq uint64) int {
			return cmp.Compare(b.first+uint64(b.n)-1, seq)
		})
		b := j.blocks[i]
		buf = append(buf[:0], b.mem[:b.used]...)
		first, n := b.first, b.n
		names := j.names
		bodies := j.bodiesOf(next, first+uint64(n)-1)
		j.mu.Unlock()

		d := decoder{b: buf}
		var r Record
		for s := first; s < first+uint64(n) && d.next(&r, names); s++ {
			if s < next {
				continue
			}
			r.Seq = s
			if b, ok := bodies[s]; ok {
				r.Body, r.BodyTruncated = string(b.data), b.truncated
			}
			if keep == nil || keep(&r) {
				records = append(records, r)
			}
		}
		next = first + uint64(n)
	}
}

// bodiesOf returns the kept bodies of records first to last, by seq; j.mu
// is held.
func (j *Journal) bodiesOf(first, last uint64) map[uint64]bodySlot {
	if len(j.bodies) == 0 || first > last {
		return nil
	}
	m := map[uint64]bodySlot{}
	for _, b := range j.bodies {
		if b.data != nil && b.seq >= first && b.seq <= last {
			m[b.seq] = b
		}
	}
	return m
}
