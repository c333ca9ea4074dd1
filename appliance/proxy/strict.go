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

// headScan watches the bytes of request heads as the client connection
// reads them, for a line ended by a bare LF: fasthttp would wait for a
// CRLFCRLF that never comes, until the idle timeout. It follows the
// connection's requests itself, so that it never reads a body as a head
// whatever fasthttp has read ahead: past a head without a body it watches
// the next one, past a Content-Length body it counts the body's bytes, and
// at a chunked body or a protocol switch (Upgrade, CONNECT) it stops for
// the rest of the connection, whose later heads misframed still checks once
// fasthttp has them whole. Empty lines before a request line are skipped,
// as RFC 9112 section 2.2 asks.
type headScan struct {
	on    bool
	lead  bool  // before a request line
	skip  int64 // body bytes still to pass over
	prev  byte  // the last byte scanned
	line  int   // bytes of the current line so far
	index int   // which request of the connection the head is, from 1
	badAt int   // the request whose head has a bare LF; 0 for none
	body  int64 // the head's Content-Length; -1 for none, -2 when it cannot be followed
	start [48]byte
	n     int // bytes of the line in start
}

// begin arms the scan for a new connection.
func (s *headScan) begin() { *s = headScan{on: true, lead: true, index: 1, body: -1} }

// scan looks at the next bytes b of the connection; false at a bare LF.
func (s *headScan) scan(b []byte) bool {
	for len(b) > 0 {
		if s.skip > 0 {
			n := min(s.skip, int64(len(b)))
			s.skip -= n
			b = b[n:]
			continue
		}
		if s.lead {
			i := 0
			for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
				i++
			}
			if b = b[i:]; len(b) == 0 {
				return true
			}
			s.lead = false
		}
		j := bytes.IndexByte(b, '\n')
		seg := b
		if j >= 0 {
			seg = b[:j]
		}
		s.n += copy(s.start[s.n:], seg)
		if j < 0 {
			s.prev = b[len(b)-1]
			s.line += len(b)
			return true
		}
		if j > 0 {
			s.prev = b[j-1]
		}
		if s.prev != '\r' {
			s.on, s.badAt = false, s.index
			return false
		}
		empty := s.line+j == 1
		if !empty {
			s.look()
		}
		s.prev, s.line, s.n, b = '\n', 0, 0, b[j+1:]
		if empty { // the end of the head
			if s.body == -2 {
				s.on = false
				return true
			}
			*s = headScan{on: true, lead: true, index: s.index + 1, body: -1, skip: max(s.body, 0)}
		}
	}
	return true
}

var (
	connectMethod = []byte("CONNECT ")
	upgradeName   = []byte("Upgrade")
)

// look notes what the line in start says about what follows the head.
func (s *headScan) look() {
	l := s.start[:s.n]
	switch {
	case len(l) >= len(connectMethod) && bytes.EqualFold(l[:len(connectMethod)], connectMethod),
		isField(l, upgradeName), isField(l, transferEncoding):
		s.body = -2
	case isField(l, contentLength):
		if s.body != -1 || s.n == len(s.start) {
			s.body = -2 // twice, or too long to read: fasthttp refuses or it is odd
			return
		}
		v := l[len(contentLength):]
		v = bytes.Trim(v[bytes.IndexByte(v, ':')+1:], " \t\r")
		n := int64(0)
		for _, c := range v {
			if c < '0' || c > '9' || n > 1<<50 {
				s.body = -2
				return
			}
			n = n*10 + int64(c-'0')
		}
		if len(v) == 0 {
			n = -2
		}
		s.body = n
	}
}

// isField reports whether the header line l is of the field name.
func isField(l, name []byte) bool {
	if len(l) <= len(name) || !bytes.EqualFold(l[:len(name)], name) {
		return false
	}
	for _, c := range l[len(name):] {
		switch c {
		case ':':
			return true
		case ' ', '\t':
		default:
			return false
		}
	}
	return false
}

// refused answers a request whose framing is ambiguous with a 400 and
// closes the connection; false when the request may go on.
func (p *Proxy) refused(ctx *fasthttp.RequestCtx) bool {
	why := misframed(ctx.Request.Header.RawHeaders())
	if c, ok := ctx.Conn().(*clientConn); ok {
		c.served++
		if why == "" && c.head.badAt == c.served {
			why = errBareLF.Error()
		}
	}
	if why == "" {
		return false
	}
	p.fail(ctx, nil, fasthttp.StatusBadRequest, why)
	ctx.SetConnectionClose() // after fail, whose Reset would forget it
	p.log.Debug("refused request", "client", ctx.RemoteAddr().String(), "why", why)
	return true
}
