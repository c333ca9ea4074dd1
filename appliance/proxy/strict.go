package proxy

import (
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"
)

// A request whose framing two parsers could read differently is refused,
// never forwarded: that ambiguity is what request smuggling lives on. nginx
// refuses the same requests (RFC 9112 sections 5.2 and 6.1, 6.3) with a 400,
// and so does canaryd, closing the connection afterwards. fasthttp already
// refuses duplicate Content-Length lines, Transfer-Encoding in HTTP/1.0,
// bare CRs, control bytes and spaces before a colon; what it lets through
// is checked here.
//
// Two places look: the head as fasthttp parsed it (misframed, from serve),
// and, for the line endings of a head still arriving, the client
// connection's reads (headScan), since fasthttp waits for a CRLFCRLF that a
// bare-LF client never sends.

var (
	contentLength    = []byte("Content-Length")
	transferEncoding = []byte("Transfer-Encoding")
	chunked          = []byte("chunked")
)

// misframed says what is wrong with the header block raw (as received,
// after the request line), or "" when nothing is: a bare LF line ending, an
// obs-fold line, Transfer-Encoding with Content-Length, or a
// Transfer-Encoding other than a lone chunked.
func misframed(raw []byte) string {
	var cl, te, teChunked bool
	for line := 0; line < len(raw); {
		end := bytes.IndexByte(raw[line:], '\n')
		if end < 0 {
			break
		}
		end += line
		if end == 0 || raw[end-1] != '\r' {
			return "a line ends in a bare LF"
		}
		if end+1 < len(raw) && (raw[end+1] == ' ' || raw[end+1] == '\t') {
			return "a header is folded over lines (obs-fold)"
		}
		l := raw[line : end-1]
		line = end + 1
		colon := bytes.IndexByte(l, ':')
		if colon < 0 {
			continue
		}
		switch name := l[:colon]; {
		case named(name, contentLength):
			cl = true
		case named(name, transferEncoding):
			te = true
			teChunked = named(bytes.Trim(l[colon+1:], " \t"), chunked)
		}
	}
	switch {
	case te && cl:
		return "both Content-Length and Transfer-Encoding"
	case te && !teChunked:
		return "a Transfer-Encoding other than chunked"
	}
	return ""
}

// errBareLF is a request head with a line that ends in a bare LF.
var errBareLF = errors.New("a line of the request head ends in a bare LF")

// headScan watches the bytes of a request head as the client connection
// reads them, for a line ended by a bare LF: fasthttp would wait for a
// CRLFCRLF that never comes, until the idle timeout. It is on from the
// start of the connection and again once a request's body is read whole
// (rearm), and off from the end of the head it watched.
//
// At the start of a connection the scan knows where it is, and skips the
// empty lines a client may send before its request line (RFC 9112 section
// 2.2 asks a server to ignore them). A rearmed scan cannot know what fasthttp has already buffered of the next
// request (a pipelined one), so its first byte decides: a CR or LF could be
// the end of a head already read, and the scan then stays off rather than
// risk reading a body as a head. Heads it does not watch are still checked
// whole by misframed once fasthttp has them; only a pipelined bare-LF head
// can still wait for the idle timeout.
type headScan struct {
	on    bool
	fresh bool // nothing read since rearm
	lead  bool // before the request line of a connection's first request
	prev  byte // the last byte scanned
	line  int  // bytes of the current line so far
	bad   bool // a bare LF was seen
}

func (s *headScan) rearm() { *s = headScan{on: true, fresh: true} }

// start arms the scan for a new connection's first request.
func (s *headScan) start() { *s = headScan{on: true, lead: true} }

// scan looks at the next bytes b of the connection; false at a bare LF.
func (s *headScan) scan(b []byte) bool {
	if s.lead {
		i := 0
		for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
			i++
		}
		if i == len(b) {
			return true
		}
		s.lead, b = false, b[i:]
	}
	if s.fresh {
		s.fresh = false
		if b[0] == '\r' || b[0] == '\n' {
			s.on = false
			return true
		}
	}
	for len(b) > 0 {
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			s.prev = b[len(b)-1]
			s.line += len(b)
			return true
		}
		if j > 0 {
			s.prev = b[j-1]
		}
		if s.prev != '\r' {
			s.on, s.bad = false, true
			return false
		}
		if s.line+j == 1 { // an empty line: the end of the head
			s.on = false
			return true
		}
		s.prev, s.line, b = '\n', 0, b[j+1:]
	}
	return true
}

// refused answers a request whose framing is ambiguous with a 400 and
// closes the connection; false when the request may go on.
func (p *Proxy) refused(ctx *fasthttp.RequestCtx) bool {
	why := misframed(ctx.Request.Header.RawHeaders())
	if c, ok := ctx.Conn().(*clientConn); ok && why == "" && c.head.bad {
		why = errBareLF.Error()
	}
	if why == "" {
		return false
	}
	p.fail(ctx, nil, fasthttp.StatusBadRequest, why)
	ctx.SetConnectionClose() // after fail, whose Reset would forget it
	p.log.Debug("refused request", "client", ctx.RemoteAddr().String(), "why", why)
	return true
}

// expectHead has the client connection watch the next request head: the
// request's body is read whole.
func expectHead(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*clientConn); ok {
		c.head.rearm()
	}
}
