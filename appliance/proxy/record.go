package proxy

import (
	"bytes"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/journal"
)

// SetJournal makes the proxy record every request a canary upstream
// served in j, at the end of its response; nil stops it.
func (p *Proxy) SetJournal(j *journal.Journal) { p.journal.Store(j) }

// pathMax is the most of a path a record copies: the journal keeps less,
// since the request id and the user key share its room, and marks the
// path as cut when it had to leave some of it out.
const pathMax = 192

// record is one request a canary upstream served, on its way to the
// journal. It lives from the request's first attempt on a canary to the end
// of its response, which for a streamed body is after the handler returned,
// so it holds copies of the request's bytes rather than the request's own
// buffers, which fasthttp may reuse by then. Records are pooled: the
// request path allocates nothing for one, but the body capture's buffer the
// first time.
type record struct {
	j       *journal.Journal
	e       journal.Entry
	id      idBuf
	key     [journal.KeyMax]byte
	method  [journal.MethodMax]byte
	path    [pathMax]byte
	body    []byte // the start of the request body when captured
	bodyCut bool   // the body was longer than what body holds
	capture bool   // the journal wants this request's body
}

var records = sync.Pool{New: func() any { return new(record) }}

// newRecord starts the record of the request in ctx, with the given id and
// user key (nil without one). It arrived when fasthttp had read its head:
// ctx.Time.
func newRecord(j *journal.Journal, ctx *fasthttp.RequestCtx, id, key []byte) *record {
	r := records.Get().(*record)
	r.j = j
	r.e = journal.Entry{Time: ctx.Time()}
	r.e.RequestID = r.id[:copy(r.id[:], id)]
	r.e.Method = r.method[:copy(r.method[:], ctx.Method())]
	r.e.Path = r.path[:copy(r.path[:], pathOf(ctx))]
	if len(key) > 0 {
		r.e.UserKey = r.key[:copy(r.key[:], key)]
	}
	r.body, r.bodyCut = r.body[:0], false
	r.capture = false
	if limit := j.BodyLimit(); limit > 0 && changes(ctx.Method()) {
		r.capture = true
		if cap(r.body) < limit {
			r.body = make([]byte, 0, limit)
		}
		if !ctx.Request.IsBodyStream() {
			r.tee(ctx.Request.Body())
		}
	}
	return r
}

// pathOf is the request's path as the client sent it, without the query
// string or a fragment: those often carry tokens and personal data, and
// never reach the journal.
func pathOf(ctx *fasthttp.RequestCtx) []byte {
	path := ctx.URI().PathOriginal()
	if i := bytes.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return path
}

// changes reports whether a request of method may change data: the ones
// whose bodies the journal keeps.
func changes(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodPatch, fasthttp.MethodDelete:
		return true
	}
	return false
}

// tee keeps the start of the request body as it passes on to the upstream,
// up to the journal's limit.
func (r *record) tee(b []byte) {
	room := cap(r.body) - len(r.body)
	if len(b) > room {
		b, r.bodyCut = b[:room], true
	}
	r.body = append(r.body, b...)
}

// finish adds the record to the journal, out being the response body bytes
// relayed, and gives it back to the pool.
func (r *record) finish(out int64) {
	r.e.Duration = time.Since(r.e.Time)
	r.e.BytesOut = out
	if r.capture {
		r.e.Body, r.e.BodyTruncated = r.body, r.bodyCut
	}
	r.j.Add(&r.e)
	r.drop()
}

// drop gives the record back to the pool without adding it: the request
// ended up on a stable upstream.
func (r *record) drop() {
	r.j, r.e = nil, journal.Entry{}
	records.Put(r)
}
