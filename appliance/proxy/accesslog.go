package proxy

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
)

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// SetAccessLog turns the access log on or off: one Info entry per request.
// It is off by default, since an SD card wears out under a line per request.
func (p *Proxy) SetAccessLog(on bool) { p.accessLog.Store(on) }

// upstreamKey is where the access log finds the upstream that answered.
const upstreamKey = "canaryd.upstream"

// logAccess writes one access-log entry. The query string is left out: it
// often carries tokens and personal data.
func (p *Proxy) logAccess(ctx *fasthttp.RequestCtx, start time.Time) {
	upstream, _ := ctx.UserValue(upstreamKey).(string)
	p.log.Info("request",
		"CLIENT", p.client(ctx),
		"METHOD", string(ctx.Method()),
		"PATH", string(ctx.Path()),
		"STATUS", ctx.Response.StatusCode(),
		"UPSTREAM", upstream,
		"REQUEST_ID", string(ctx.Response.Header.PeekBytes(xRequestID)),
		"DURATION_MS", float64(time.Since(start).Microseconds())/1000)
}
