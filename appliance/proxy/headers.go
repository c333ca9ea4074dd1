package proxy

import (
	"bufio"
	"bytes"
	"io"
	"iter"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/route"
)

// hopByHop are the headers that belong to one connection, not the message
// (RFC 9110 section 7.6.1), plus the non-standard ones proxies also drop.
var hopByHop = [][]byte{
	[]byte("Connection"), []byte("Proxy-Connection"), []byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"), []byte("Proxy-Authorization"), []byte("Te"),
	[]byte("Trailer"), []byte("Upgrade"), []byte("Expect"),
}

var (
	connectionHeader = []byte("Connection")
	cookieHeader     = []byte("Cookie")
	upgradeHeader    = []byte("Upgrade")
	upgradeToken     = []byte("upgrade")
	xForwardedFor    = []byte("X-Forwarded-For")
	xForwardedProto  = []byte("X-Forwarded-Proto")
	xForwardedHost   = []byte("X-Forwarded-Host")
	schemeHTTP       = []byte("http")
	schemeHTTPS      = []byte("https")
)

// Header names are passed on as they came, not normalized, so every lookup
// here matches them case-insensitively: lower-case names are common, and a
// hop-by-hop header that slipped through in another spelling would leak.
// Requests are read through AllInOrder, the head as received: All would
// parse (and later rewrite) the client's cookies.

// hopByHopIn reports whether name is a hop-by-hop header for a message
// whose Connection headers are conn.
func hopByHopIn(conn [][]byte, name []byte) bool {
	for _, hb := range hopByHop {
		if named(name, hb) {
			return true
		}
	}
	for _, v := range conn {
		if listed(v, name) {
			return true
		}
	}
	return false
}

// named reports whether the header name k is name, in any case. The
// length goes first: most names differ in it, and EqualFold would compare
// their bytes first.
func named(k, name []byte) bool { return len(k) == len(name) && bytes.EqualFold(k, name) }

// listed reports whether the comma-separated list v names token.
func listed(v, token []byte) bool {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), token) {
			return true
		}
	}
	return false
}

// connectionValues appends the values of the Connection headers in hs.
func connectionValues(dst [][]byte, hs iter.Seq2[[]byte, []byte]) [][]byte {
	for k, v := range hs {
		if named(k, connectionHeader) {
			dst = append(dst, v)
		}
	}
	return dst
}

// upgradeOf is the protocol a request asks to switch to, or nil when it
// asks for none.
func upgradeOf(h *fasthttp.RequestHeader) []byte {
	var upgrade []byte
	asked := false
	for k, v := range h.AllInOrder() {
		switch {
		case bytes.EqualFold(k, connectionHeader):
			asked = asked || listed(v, upgradeToken)
		case bytes.EqualFold(k, upgradeHeader):
			upgrade = v
		}
	}
	if !asked || len(upgrade) == 0 {
		return nil
	}
	return upgrade
}

// prepareRequest turns the client's request into the upstream's: it drops
// hop-by-hop headers, says who the client was, and gives the request its
// id, which it returns: the client's X-Request-Id when it sent a valid one
// (the first, of several), else a new one in buf. It drops any version header plan names, which
// only the proxy sets (see tellVersion).
func (p *Proxy) prepareRequest(ctx *fasthttp.RequestCtx, plan *route.Plan, buf *idBuf) []byte {
	h := &ctx.Request.Header
	var connBuf [4][]byte
	conn := connectionValues(connBuf[:0], h.AllInOrder())

	// Every X-Forwarded-For line the client sent, in any spelling, folds
	// into one list that ends with the client's address. The scheme and
	// host are ours to say: a client must not claim TLS or another name.
	var xffBuf [128]byte
	xff := xffBuf[:0]
	var keptBuf [32][]byte
	var delBuf [8][]byte
	kept, del := keptBuf[:0], delBuf[:0]
	// The client's id stays as it came when it is valid and alone; else
	// every line of it goes and one is set.
	var id, idName []byte
	idLines := 0
	version := plan.VersionHeader()
	// A trusted proxy's X-Forwarded-Proto and -Host pass as it set them,
	// and ours are not added beside them.
	trusted := p.trusts(ctx.RemoteIP())
	toldProto, toldHost := false, false
	for k, v := range h.AllInOrder() {
		switch {
		case hopByHopIn(conn, k):
			del = append(del, k)
		case named(k, xRequestID):
			idLines++
			if id == nil && validID(v) {
				id, idName = append(buf[:0], v...), k
			} else {
				del = append(del, k)
			}
		case version != nil && named(k, version):
			del = append(del, k)
		case named(k, xForwardedFor):
			if v = bytes.TrimSpace(v); len(v) > 0 {
				xff = append(append(xff, v...), ", "...)
			}
			del = append(del, k)
		case named(k, xForwardedProto), named(k, xForwardedHost):
			if !trusted {
				del = append(del, k)
				break
			}
			kept = append(kept, k)
			if named(k, xForwardedProto) {
				toldProto = true
			} else {
				toldHost = true
			}
		default:
			kept = append(kept, k)
		}
	}
	setID := id == nil || idLines > 1
	if setID && idName != nil {
		del = append(del, idName)
	}
	deleteInOrder(h, del, kept)
	if id == nil {
		id = p.ids.next(buf)
	}
	if setID {
		h.SetCanonical(xRequestID, id)
	}
	// The upstream connection is kept alive whatever the client asked.
	h.ResetConnectionClose()

	if ip, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		xff = ip.Unmap().AppendTo(xff)
	}
	h.SetCanonical(xForwardedFor, xff)
	switch {
	case toldProto:
	case ctx.IsTLS():
		h.SetCanonical(xForwardedProto, schemeHTTPS)
	default:
		h.SetCanonical(xForwardedProto, schemeHTTP)
	}
	if host := h.Host(); len(host) > 0 && !toldHost {
		h.SetCanonical(xForwardedHost, host)
	}
	return id
}

// deleteInOrder deletes the headers named in del from h, whose other
// headers are named in kept, in order. fasthttp deletes a header by moving
// the last one into its place, which reverses repeated lines of a name
// whose order is part of the message (RFC 9110 section 5.3): names that
// repeat are therefore set again, in their order, in the rare message that
// has them.
func deleteInOrder(h *fasthttp.RequestHeader, del, kept [][]byte) {
	if len(del) == 0 {
		return
	}
	var again [][]byte
	for i, k := range kept {
		if bytes.EqualFold(k, cookieHeader) {
			// The order of cookies carries no meaning (RFC 6265 section
			// 5.4), and setting them again would have fasthttp rewrite
			// them.
			continue
		}
		for _, k2 := range kept[i+1:] {
			if bytes.EqualFold(k, k2) {
				again = append(again, k)
				break
			}
		}
	}
	if len(again) == 0 {
		for _, k := range del {
			h.DelBytes(k)
		}
		return
	}
	type line struct{ k, v []byte }
	var lines []line
	for k, v := range h.AllInOrder() {
		for _, a := range again {
			if bytes.EqualFold(k, a) {
				lines = append(lines, line{bytes.Clone(k), bytes.Clone(v)})
				break
			}
		}
	}
	for _, k := range del {
		h.DelBytes(k)
	}
	for _, l := range lines {
		h.DelBytes(l.k)
	}
	for _, l := range lines {
		h.AddBytesKV(l.k, l.v)
	}
}

// copyResponseHeader gives dst the status and the end-to-end headers of
// src, in order. Whether the client connection stays open is our decision,
// not the upstream's, and the request id is the proxy's to send: the caller
// sets it. Building dst afresh, rather than copying src and
// deleting from the copy, keeps repeated lines in order (see deleteInOrder)
// and leaves dst with the server's defaults. Date is the one header
// fasthttp will not take: the proxy sends its own, as nginx does.
func copyResponseHeader(dst, src *fasthttp.ResponseHeader) {
	dst.SetStatusCode(src.StatusCode())
	if m := src.StatusMessage(); len(m) > 0 {
		dst.SetStatusMessage(m)
	}
	var connBuf [4][]byte
	conn := connectionValues(connBuf[:0], src.All())
	for k, v := range src.All() {
		if !hopByHopIn(conn, k) && !named(k, xRequestID) {
			dst.AddBytesKV(k, v)
		}
	}
}

// writeUpgradeRequest writes the client's request head to the upstream,
// as prepareRequest left it, and the upgrade the client asked for.
func writeUpgradeRequest(w io.Writer, ctx *fasthttp.RequestCtx, upgrade []byte) error {
	h := &ctx.Request.Header
	bw := bufio.NewWriter(w)
	bw.Write(h.Method())
	bw.WriteByte(' ')
	bw.Write(h.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.Write(h.Host())
	bw.WriteString("\r\n")
	for k, v := range h.All() {
		if string(k) == "Host" {
			continue
		}
		bw.Write(k)
		bw.WriteString(": ")
		bw.Write(v)
		bw.WriteString("\r\n")
	}
	bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
	bw.Write(upgrade)
	bw.WriteString("\r\n\r\n")
	return bw.Flush()
}
