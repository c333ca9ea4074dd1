package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// serve proxies one request: a plain one, or a protocol upgrade
// (WebSocket), which takes the same way through the routing, the retries,
// the accounting and the journal; only its attempt differs (see upgrade).
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	if p.refused(ctx) {
		return
	}
	if p.isProbe(ctx) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	var al *access
	if p.accessLog.Load() {
		al = p.newAccess(ctx, time.Now())
		defer al.served(ctx)
	}
	up := upgradeOf(&ctx.Request.Header)
	if up == nil && ctx.Request.Header.ConnectionClose() {
		// Whatever the answer, error responses included.
		defer ctx.SetConnectionClose()
	}
	j := p.journal.Load()
	// An HTTP/1.0 client need not name a host. The upstream is then asked
	// by its own name, as nginx does, since fasthttp (rightly) sends no
	// request without one.
	hostless := len(ctx.Request.Header.Host()) == 0
	t := tries{plan: p.router.Plan()}
	var idb idBuf
	id := p.prepareRequest(ctx, t.plan, &idb)
	if al != nil {
		al.id = string(id)
	}
	var body *clientBody
	if up != nil {
		// For the access log: an upgrade's 101 goes out from the upstream's
		// head, after the hijack.
		ctx.Response.Header.SetCanonical(xRequestID, id)
	} else if ctx.Request.IsBodyStream() {
		body = &clientBody{ctx: ctx, r: ctx.Request.BodyStream(),
			left: ctx.Request.Header.ContentLength(), timeout: p.opts.IdleTimeout}
		ctx.Request.SetBodyStream(body, body.left)
	}

	u := p.first(&t, &ctx.Request)
	if u == nil {
		p.fail(ctx, id, fasthttp.StatusBadGateway, "no upstream is available")
		return
	}
	// rec is the journal's record while the request is on a canary.
	var rec *record
	for {
		if hostless {
			ctx.Request.URI().SetHost(u.URL.Host)
		}
		if al != nil {
			al.upstream = u.Name
		}
		t.tellVersion(&ctx.Request.Header, u)
		if j != nil {
			rec = t.follow(rec, j, ctx, id, u, body)
		}
		var err error
		if up != nil {
			if err = p.upgrade(ctx, t.plan, u, up, id, rec); err == nil {
				return
			}
		} else {
			var resp *upstreamResponse
			if resp, err = p.attempt(ctx, t.plan, u, body); err == nil {
				if rec != nil {
					rec.e.Status, rec.e.BytesIn = resp.resp.StatusCode(), bytesIn(ctx, body)
					resp.rec = rec
				}
				resp.access = al
				relay(ctx, resp, id)
				return
			}
		}
		if body.failed() {
			rec.failed(ctx, body, err)
			p.clientFailed(ctx, id, body.err)
			return
		}
		if retryable(&ctx.Request, err) {
			if next := p.retry(&t); next != nil {
				if p.log.Enabled(ctx, slog.LevelDebug) {
					// The arguments cost allocations even when dropped.
					p.log.Debug("retrying on another upstream", "UPSTREAM", u.Name, "error", err.Error())
				}
				u = next
				continue
			}
		}
		rec.failed(ctx, body, err)
		p.failWith(ctx, id, err)
		return
	}
}

// tellVersion tells a canary upstream its version in the plan's version
// header, and makes sure a stable one never sees that header: neither the
// client's (prepareRequest drops it) nor the one an earlier attempt on a
// canary set.
func (t *tries) tellVersion(h *fasthttp.RequestHeader, u *route.Upstream) {
	name := t.plan.VersionHeader()
	switch {
	case name == nil:
	case u.Role == config.Canary:
		h.SetCanonical(name, t.plan.CanaryVersion())
		t.versioned = true
	case t.versioned:
		h.DelBytes(name)
		t.versioned = false
	}
}

// follow keeps the journal's record of a request while its attempts are on
// canary upstreams: rec is the record so far (nil before the first), the
// result the record for the attempt on u, nil when u is stable.
func (t *tries) follow(rec *record, j *journal.Journal, ctx *fasthttp.RequestCtx, id []byte, u *route.Upstream, body *clientBody) *record {
	if u.Role != config.Canary {
		if rec != nil {
			rec.drop()
			body.teeTo(nil)
		}
		return nil
	}
	if rec == nil {
		rec = newRecord(j, ctx, id, t.key)
		rec.e.Version = t.plan.Version()
		if rec.capture {
			body.teeTo(rec)
		}
	}
	rec.e.Upstream = u.Name
	return rec
}

// failed records a request whose last attempt, on a canary, got no answer
// (err): with status 0 when the canary may have seen it, not at all when it
// cannot have, since the connection was never made.
func (r *record) failed(ctx *fasthttp.RequestCtx, body *clientBody, err error) {
	if r == nil {
		return
	}
	if !sent(err) {
		r.drop()
		return
	}
	r.e.Status, r.e.BytesIn = 0, bytesIn(ctx, body)
	r.finish(0)
}

// sent reports whether a request that met err may have reached its
// upstream.
func sent(err error) bool {
	var de *dialError
	return !errors.As(err, &de) && !errors.Is(err, fasthttp.ErrNoFreeConns)
}

// bytesIn is how many bytes of the request's body went on to an upstream.
func bytesIn(ctx *fasthttp.RequestCtx, body *clientBody) int64 {
	if body != nil {
		return body.n
	}
	return int64(len(ctx.Request.Body()))
}

// tries is one request's way through the routing: the plan it started on,
// the upstreams it tried, and whether it has had nginx's one retry on
// another upstream.
type tries struct {
	plan    *route.Plan
	tried   swrr.Set
	retried bool
	key     []byte // the user key first found; nil without one
	// versioned: the request carries the plan's version header, set for an
	// attempt on a canary.
	versioned bool
}

// first picks the upstream of a new request on t.plan; nil when none is
// available.
// A request with a user key (canary.sticky_header or sticky_cookie) or a
// tester's override header goes to the role its key or override names.
func (p *Proxy) first(t *tries, req *fasthttp.Request) *route.Upstream {
	if !t.plan.Keyed() {
		return t.plan.Pick(&t.tried, time.Now())
	}
	var key, override []byte
	if name := t.plan.StickyHeader(); name != nil {
		key = header(&req.Header, name)
	}
	if name := t.plan.StickyCookie(); name != nil && len(key) == 0 {
		key = req.Header.CookieBytes(name)
	}
	if name := t.plan.OverrideHeader(); name != nil {
		override = header(&req.Header, name)
	}
	t.key = key
	return t.plan.PickFor(t.plan.Affinity(key, override), &t.tried, time.Now())
}

// header is the value of the request header name, in any case: the server
// keeps header names as the client wrote them, so fasthttp's Peek, which
// then compares them exactly, would miss "x-user-id" for "X-User-ID".
func header(h *fasthttp.RequestHeader, name []byte) []byte {
	for k, v := range h.All() {
		if bytes.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// retry picks the upstream for the retry after a failed attempt, on the
// plan the request started on and in the router's mode now; nil when the
// request has had its retry or no other upstream is left.
func (p *Proxy) retry(t *tries) *route.Upstream {
	if t.retried {
		return nil
	}
	t.retried = true
	return t.plan.PickRetry(&t.tried, p.router.Plan().Mode, time.Now())
}

// attempt sends the request to u once and accounts for the outcome.
func (p *Proxy) attempt(ctx *fasthttp.RequestCtx, plan *route.Plan, u *route.Upstream, body *clientBody) (*upstreamResponse, error) {
	pl := p.poolOf(u)
	if pl.tls {
		ctx.Request.URI().SetScheme("https")
	} else {
		ctx.Request.URI().SetScheme("http")
	}
	resp := upstreamResponses.Get().(*upstreamResponse)
	resp.pool = pl
	// An upstream that names no type gets none made up for it.
	resp.resp.Header.SetNoDefaultContentType(true)
	u.Stats.Begin()
	start := time.Now()
	err := pl.hc.Do(&ctx.Request, &resp.resp)
	end := time.Now()

	o := outcome{Duration: end.Sub(start)}
	switch {
	case err == nil:
		// Accounted for once the body is through (see release): an
		// upstream can still fail in it.
		o.Status = resp.resp.StatusCode()
		resp.plan, resp.u, resp.o, resp.end = plan, u, o, end
		return resp, nil
	case body.failed():
		// The client went away or sent a broken body: nobody's failure.
		resp.release()
		u.Stats.Abandon()
		plan.Done(u, false, end)
		return nil, err
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		// Our own pool limit, not the upstream's doing: not an attempt on
		// it, and no sample for its error rate.
		resp.release()
		u.Stats.Abandon()
		plan.Done(u, false, end)
		return nil, err
	}
	o.Failed = true
	resp.release()
	p.account(plan, u, o, end)
	return nil, err
}

// account records the outcome of one attempt on u, which Begin counted in
// flight.
func (p *Proxy) account(plan *route.Plan, u *route.Upstream, o outcome, end time.Time) {
	u.Stats.Record(end, o.Status, o.Failed, o.Duration)
	plan.Done(u, o.Failed, end)
}
