package proxy

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/route"
)

// upstreamResponse is an upstream's answer. It is kept apart from the
// client's response, which only borrows its headers and streams its body:
// fasthttp decides whether the upstream connection goes back to the pool
// from the response it read, so sharing one would let the client's
// Connection: close (which the server sets on the client's response) close
// a healthy upstream connection too.
//
// It is the client's body stream itself, so it must offer nothing but Read
// and CloseWithError: fasthttp copies with any WriteTo it finds.
type upstreamResponse struct {
	resp fasthttp.Response
	pool *pool
	body io.Reader
	n    int64   // body bytes relayed
	rec  *record // the journal's, finished with the response; nil without
	// access is the access log's entry, written with the response when
	// its body streams; nil without.
	access *access
	// The attempt that got it, accounted for once its body is through: u
	// is nil for a response of no attempt (one that failed, and was
	// accounted for there).
	plan *route.Plan
	u    *route.Upstream
	o    outcome
	end  time.Time // when the headers came
	// broke is how the upstream's body failed (a reset, a read timeout,
	// a body cut short); nil while it has not.
	broke error
	// to is the client's response header, for the trailers that come
	// after a chunked body; nil when the body has a length.
	to *fasthttp.ResponseHeader
}

var upstreamResponses = sync.Pool{New: func() any { return new(upstreamResponse) }}

// relay makes resp the client's response, with the request's id.
func relay(ctx *fasthttp.RequestCtx, up *upstreamResponse, id []byte) {
	copyResponseHeader(&ctx.Response.Header, &up.resp.Header)
	ctx.Response.Header.SetCanonical(xRequestID, id)
	if !up.resp.IsBodyStream() {
		up.release()
		return
	}
	up.body = up.resp.BodyStream()
	if up.access != nil {
		up.access.streamed = true
	}
	n := up.resp.Header.ContentLength()
	if n >= 0 {
		ctx.Response.SetBodyStream(up, n)
		return
	}
	if !ctx.Request.Header.IsHTTP11() {
		relayUntilClose(ctx, up)
		return
	}
	// Chunked, also when the upstream ends the body by closing, so that the
	// client connection can stay open.
	up.to = &ctx.Response.Header
	ctx.Response.SetBodyStream(up, -1)
}

// relayUntilClose sends an HTTP/1.0 client a body of unknown length the
// only way it can read one: ended by closing the connection. fasthttp
// would send such a stream chunked whatever the client's version, so the
// response is written here, on the hijacked connection.
func relayUntilClose(ctx *fasthttp.RequestCtx, up *upstreamResponse) {
	h := &ctx.Response.Header
	h.SetConnectionClose()
	head := h.AppendBytes(nil)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		_, err := c.Write(head)
		if err == nil {
			_, err = io.Copy(c, up)
		}
		up.CloseWithError(err)
	})
}

// Read reads the upstream's body. Its errors are the upstream's: the
// client's side is written, not read, here.
func (r *upstreamResponse) Read(b []byte) (int, error) {
	n, err := r.body.Read(b)
	r.n += int64(n)
	switch {
	case err == io.EOF && r.to != nil:
		relayTrailers(r.to, &r.resp.Header)
	case err != nil && err != io.EOF:
		r.broke = err
	}
	return n, err
}

// relayTrailers passes on the trailer fields an upstream sent after its
// chunked body; fasthttp writes them after the client's last chunk. Those
// that may not be trailers (framing, routing, authentication) fasthttp
// refuses, and they are dropped, as nginx drops them.
func relayTrailers(to, from *fasthttp.ResponseHeader) {
	for k := range from.Trailers() {
		if v := from.PeekBytes(k); v != nil && to.AddTrailerBytes(k) == nil {
			to.SetBytesKV(k, v)
		}
	}
}

// CloseWithError is called once the client's response is written, or
// failed to be (err): the upstream connection goes back to the pool only
// when its body was read whole. That is the end of the request, for the
// journal too.
func (r *upstreamResponse) CloseWithError(err error) error {
	if err == nil {
		err = r.broke
	}
	if c, ok := r.body.(fasthttp.ReadCloserWithError); ok {
		c.CloseWithError(err)
	}
	r.release()
	return nil
}

// release ends the response: it accounts for its attempt and gives the
// response back to its pool.
//
// A body that broke off after the headers is an error of its upstream for
// the verdict and the counters: the client got no whole answer, and fasthttp
// closes its connection, having no way to tell it otherwise. It does not
// count toward max_fails, as in nginx, whose peer.free is told of a failure
// only by ngx_http_upstream_next, before a response was relayed: once the
// headers went out there is no other upstream to try, and a body cut short
// (a crashed worker, say) says less about the next request than a refused
// connection does. A client that went away mid-body leaves broke nil: the
// upstream answered, and is not blamed.
func (r *upstreamResponse) release() {
	if u := r.u; u != nil {
		end := r.end
		if r.body != nil {
			end = time.Now()
		}
		u.Stats.Record(end, r.o.Status, r.broke != nil, r.o.Duration)
		r.plan.Done(u, false, end)
	}
	if r.rec != nil {
		r.rec.finish(r.n)
	}
	if a := r.access; a != nil && a.streamed {
		a.write(r.o.Status, r.n, time.Now())
	}
	r.resp.Reset()
	pl := r.pool
	r.pool, r.body, r.rec, r.access, r.n = nil, nil, nil, nil, 0
	r.plan, r.u, r.broke, r.to = nil, nil, nil, nil
	upstreamResponses.Put(r)
	pl.released()
}

// clientBody is the client's request body on its way to an upstream. It
// tells a client that stopped sending or broke its connection apart from
// an upstream that failed, and bounds every wait for the client's next
// bytes, as nginx's client_body_timeout does.
type clientBody struct {
	ctx     *fasthttp.RequestCtx
	r       io.Reader
	left    int // bytes still to come; negative when chunked
	timeout time.Duration
	err     error   // the client's failure
	n       int64   // bytes read
	tee     *record // keeps the body's start for the journal; nil when not
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.timeout > 0 {
		b.ctx.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.tee != nil {
		b.tee.tee(p[:n])
	}
	if b.left >= 0 {
		b.left -= n
		if err == io.EOF && b.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *clientBody) failed() bool { return b != nil && b.err != nil }

// teeTo has the body's bytes kept in r (nil: no longer) as they pass.
func (b *clientBody) teeTo(r *record) {
	if b != nil {
		b.tee = r
	}
}
