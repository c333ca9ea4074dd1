package proxy

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
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

// access is one access-log entry. Its MESSAGE is the request in nginx's
// combined format, which log tools read (GoAccess, fail2ban, awk scripts
// written for nginx); the request id, the upstream, the status and the
// time taken are fields beside it. It is written once the response is
// through, so that its size and time are the whole body's: at the end of
// serve, or when a streamed body ends (upstreamResponse.release).
//
// The query string is left out of the request line: it often carries
// tokens and personal data.
type access struct {
	p        *Proxy
	start    time.Time
	line     []byte // the combined line up to the status, as the request came
	tail     []byte // and after the size: the referrer and the user agent
	upstream string
	id       string
	streamed bool // the body streams on: release writes the entry
}

// combinedTime is nginx's $time_local.
const combinedTime = "02/Jan/2006:15:04:05 -0700"

// newAccess starts the entry of the request in ctx, copying what it needs
// of the request while its buffers are the request's.
func (p *Proxy) newAccess(ctx *fasthttp.RequestCtx, start time.Time) *access {
	h := &ctx.Request.Header
	b := make([]byte, 0, 160)
	b = append(b, p.client(ctx)...)
	b = append(b, " - "...)
	b = appendEscaped(b, user(h))
	b = append(b, " ["...)
	b = start.AppendFormat(b, combinedTime)
	b = append(b, `] "`...)
	b = appendEscaped(b, h.Method())
	b = append(b, ' ')
	b = appendEscaped(b, ctx.Request.URI().PathOriginal())
	b = append(b, ' ')
	b = appendEscaped(b, h.Protocol())
	b = append(b, `" `...)
	tail := []byte(` "`)
	tail = appendEscaped(tail, orDash(h.Referer()))
	tail = append(tail, `" "`...)
	tail = appendEscaped(tail, orDash(h.UserAgent()))
	tail = append(tail, '"')
	return &access{p: p, start: start, line: b, tail: tail}
}

// user is $remote_user: the name of the request's basic authentication,
// "-" without one.
func user(h *fasthttp.RequestHeader) []byte {
	auth := h.Peek(fasthttp.HeaderAuthorization)
	const basic = "Basic "
	if len(auth) <= len(basic) || string(auth[:len(basic)]) != basic {
		return []byte("-")
	}
	dec, err := base64.StdEncoding.AppendDecode(nil, auth[len(basic):])
	if err != nil {
		return []byte("-")
	}
	for i, c := range dec {
		if c == ':' {
			return dec[:i]
		}
	}
	return []byte("-")
}

// served ends the request's part: the response's head is set. A body that
// streams on is written at its end, by the upstream response's release.
func (a *access) served(ctx *fasthttp.RequestCtx) {
	if a.streamed {
		return
	}
	a.write(ctx.Response.StatusCode(), int64(len(ctx.Response.Body())), time.Now())
}

// write logs the entry with the response's status and body size.
func (a *access) write(status int, bytes int64, end time.Time) {
	b := strconv.AppendInt(a.line, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, a.tail...)
	a.p.log.Info(string(b),
		"REQUEST_ID", a.id,
		"UPSTREAM", a.upstream,
		"STATUS", status,
		"DURATION_MS", float64(end.Sub(a.start).Microseconds())/1000)
}

func orDash(b []byte) []byte {
	if len(b) == 0 {
		return []byte("-")
	}
	return b
}

// appendEscaped appends s as nginx writes a variable into its log: a
// quote, a backslash and every byte outside printable ASCII as \xHH, so a
// line can be neither split nor forged.
func appendEscaped(b, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}
