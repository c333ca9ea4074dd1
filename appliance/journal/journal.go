// Package journal records the requests canary upstreams served, so that an
// incident report can say what a bad version touched. The journal is a
// bounded ring in memory, written on the request path without allocating
// and holding no pointers (the garbage collector never scans it), read in
// chunks so that a report never holds up a request for long.
package journal

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Limits of what one record keeps: longer values are cut, and the record
// says so. A request id longer than IDMax is not taken from a client (the
// proxy makes its own), so ids are never cut.
const (
	IDMax     = 64
	KeyMax    = 64
	MethodMax = 8
	textBytes = 192 // request id, user key and path share it
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

// slot is a Record as the ring keeps it: fixed size, no pointers.
type slot struct {
	seq               uint64
	time, dur         int64
	bytesIn, bytesOut int64
	status            int32
	upstream, version uint16 // indexes into Journal.names
	idLen, keyLen     uint8
	methodLen         uint8
	pathLen           uint8
	flags             uint8
	method            [MethodMax]byte
	text              [textBytes]byte // id, then key, then path
}

const pathCut = 1 // flags: the path was cut

// bodySlot is a kept request body, by the seq of its record.
type bodySlot struct {
	seq       uint64
	data      []byte
	truncated bool
}

// Journal is the ring. Its zero value is not usable; see New.
type Journal struct {
	mu     sync.Mutex
	slots  []slot
	seq    uint64 // of the newest record
	names  []string
	index  map[string]uint16
	bodies []bodySlot
	limit  int          // body bytes kept per request; j.mu
	limitA atomic.Int64 // the same, for BodyLimit without the lock
}

// maxBodies is how many request bodies are kept at most, whatever the
// number of records: bodies are what takes memory.
const maxBodies = 1000

// New returns a journal of records entries, keeping up to bodyLimit bytes
// of each non-idempotent request's body (0: none). A journal of 0 records
// keeps nothing. The memory is taken as records arrive, up to about
// RecordBytes per record.
func New(records, bodyLimit int) *Journal {
	j := &Journal{slots: newSlots(records), index: map[string]uint16{}}
	j.SetBodyLimit(bodyLimit)
	return j
}

// SetBodyLimit changes how many bytes of each non-idempotent request body
// are kept from now on (journal.bodies, which a reload applies); 0 stops
// keeping them and lets the kept ones go.
func (j *Journal) SetBodyLimit(n int) {
	if j == nil || len(j.slots) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case n <= 0:
		j.bodies, j.limit = nil, 0
	case j.bodies == nil:
		j.bodies, j.limit = make([]bodySlot, min(len(j.slots), maxBodies)), n
	default:
		j.limit = n
	}
	j.limitA.Store(int64(j.limit))
}

// RecordBytes is the memory one record takes in the ring.
const RecordBytes = unsafe.Sizeof(slot{})

// BodyLimit is how many bytes of a non-idempotent request's body Add
// keeps; 0 when bodies are off, so the proxy copies none.
func (j *Journal) BodyLimit() int {
	if j == nil {
		return 0
	}
	return int(j.limitA.Load())
}

// Add records e. It does not allocate, but for a body and the first time
// it sees an upstream or version name.
func (j *Journal) Add(e *Entry) {
	if j == nil || len(j.slots) == 0 {
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
	s := &j.slots[int((j.seq-1)%uint64(len(j.slots)))]
	s.seq = j.seq
	s.time, s.dur = e.Time.UnixNano(), int64(e.Duration)
	s.bytesIn, s.bytesOut, s.status = e.BytesIn, e.BytesOut, int32(e.Status)
	s.upstream, s.version = j.name(e.Upstream), j.name(e.Version)
	s.methodLen = uint8(copy(s.method[:], e.Method))
	id := e.RequestID[:min(len(e.RequestID), IDMax)]
	key := e.UserKey[:min(len(e.UserKey), KeyMax)]
	n := copy(s.text[:], id)
	n += copy(s.text[n:], key)
	p := copy(s.text[n:], e.Path)
	s.idLen, s.keyLen, s.pathLen = uint8(len(id)), uint8(len(key)), uint8(p)
	s.flags = 0
	if p < len(e.Path) {
		s.flags |= pathCut
	}
	if body != nil && len(j.bodies) > 0 {
		b := &j.bodies[int((j.seq-1)%uint64(len(j.bodies)))]
		*b = bodySlot{seq: j.seq, data: body[:min(len(body), j.limit)], truncated: e.BodyTruncated || len(body) > j.limit}
	}
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

// chunk is how many slots a reader copies per hold of the lock.
const chunk = 512

// After returns the records with a sequence number above seq that match
// keep (nil keeps all), oldest first, and lost: how many records after seq
// the ring had already overwritten. It takes the lock a chunk at a time.
func (j *Journal) After(seq uint64, keep func(*Record) bool) (records []Record, lost uint64) {
	if j == nil || len(j.slots) == 0 {
		return nil, 0
	}
	buf := make([]slot, chunk)
	next := seq + 1
	for {
		j.mu.Lock()
		newest := j.seq
		oldest := uint64(1)
		if newest > uint64(len(j.slots)) {
			oldest = newest - uint64(len(j.slots)) + 1
		}
		if next < oldest {
			lost += oldest - next
			next = oldest
		}
		n := 0
		for ; n < chunk && next+uint64(n) <= newest; n++ {
			buf[n] = j.slots[int((next+uint64(n)-1)%uint64(len(j.slots)))]
		}
		names := j.names
		bodies := j.bodiesOf(buf[:n])
		j.mu.Unlock()
		for i := range buf[:n] {
			r := buf[i].record(names)
			if b, ok := bodies[r.Seq]; ok {
				r.Body, r.BodyTruncated = string(b.data), b.truncated
			}
			if keep == nil || keep(&r) {
				records = append(records, r)
			}
		}
		next += uint64(n)
		if n < chunk {
			return records, lost
		}
	}
}

// bodiesOf returns the kept bodies of slots, by seq; j.mu is held.
func (j *Journal) bodiesOf(slots []slot) map[uint64]bodySlot {
	if len(j.bodies) == 0 || len(slots) == 0 {
		return nil
	}
	first, last := slots[0].seq, slots[len(slots)-1].seq
	m := map[uint64]bodySlot{}
	for _, b := range j.bodies {
		if b.data != nil && b.seq >= first && b.seq <= last {
			m[b.seq] = b
		}
	}
	return m
}

func (s *slot) record(names []string) Record {
	id := s.text[:s.idLen]
	key := s.text[s.idLen : s.idLen+s.keyLen]
	path := s.text[s.idLen+s.keyLen : int(s.idLen)+int(s.keyLen)+int(s.pathLen)]
	return Record{
		Seq: s.seq, Time: time.Unix(0, s.time).UTC(), RequestID: string(id),
		Method: string(s.method[:s.methodLen]), Path: string(path), PathTruncated: s.flags&pathCut != 0,
		Status: int(s.status), BytesIn: s.bytesIn, BytesOut: s.bytesOut,
		DurationMs: float64(s.dur) / float64(time.Millisecond),
		Upstream:   nameAt(names, s.upstream), Version: nameAt(names, s.version), User: string(key),
	}
}

func nameAt(names []string, i uint16) string {
	if int(i) < len(names) {
		return names[i]
	}
	return ""
}
