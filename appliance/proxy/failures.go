package proxy

import (
	"errors"

	"github.com/valyala/fasthttp"
)

// retryable reports whether a request that met err may go to another
// upstream: always when the connection was never made, otherwise only for
// an idempotent request whose body was not streamed, so nothing of it is
// lost. As in nginx, that includes a timeout.
func retryable(req *fasthttp.Request, err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	return idempotent(req) && !req.IsBodyStream()
}

func idempotent(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodTrace:
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// clientFailed answers a client whose request body broke off; it is
// usually gone, and its connection is not reused either way.
func (p *Proxy) clientFailed(ctx *fasthttp.RequestCtx, id []byte, err error) {
	if isTimeout(err) {
		p.fail(ctx, id, fasthttp.StatusRequestTimeout, "the request body stopped arriving")
	} else {
		p.fail(ctx, id, fasthttp.StatusBadRequest, "the request body ended early")
	}
	// After fail, whose Reset would clear it: what is left of the body
	// cannot be told from the next request.
	ctx.SetConnectionClose()
}

func (p *Proxy) failWith(ctx *fasthttp.RequestCtx, id []byte, err error) {
	if isTimeout(err) {
		p.fail(ctx, id, fasthttp.StatusGatewayTimeout, "the upstream did not answer in time")
		return
	}
	p.fail(ctx, id, fasthttp.StatusBadGateway, "the upstream failed")
}

// fail answers with canaryd's own error response; id is the request's,
// nil for a request that could not be read.
func (p *Proxy) fail(ctx *fasthttp.RequestCtx, id []byte, code int, why string) {
	ctx.Response.Reset()
	if id != nil {
		ctx.Response.Header.SetCanonical(xRequestID, id)
	}
	ctx.Response.SetStatusCode(code)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString(fasthttp.StatusMessage(code) + ": " + why + "\n")
}

// badRequest answers a request fasthttp could not read.
func (p *Proxy) badRequest(ctx *fasthttp.RequestCtx, err error) {
	ctx.SetConnectionClose()
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		p.fail(ctx, nil, fasthttp.StatusRequestHeaderFieldsTooLarge, "the request head is too large")
	case isTimeout(err):
		p.fail(ctx, nil, fasthttp.StatusRequestTimeout, "the request did not arrive in time")
	default:
		p.fail(ctx, nil, fasthttp.StatusBadRequest, "malformed request")
	}
	p.log.Debug("unreadable request", "client", ctx.RemoteAddr().String(), "error", err.Error())
}
