package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/route"
)

// serveUpgrade passes a protocol upgrade (WebSocket) through: the request
// goes to an upstream on a connection of its own, and once the upstream
// answers 101 the two connections are spliced until either side closes.
//
// A canary upstream's upgrade is journaled at its end: when the spliced
// connection closes, or when the upstream's refusal was passed on.
func (p *Proxy) serveUpgrade(ctx *fasthttp.RequestCtx, upgrade string) {
	j := p.journal.Load()
	t := tries{plan: p.router.Plan()}
	var idb idBuf
	id := p.prepareRequest(ctx, t.plan, &idb)
	// For the access log: the 101 itself is written from the upstream's
	// head, below.
	ctx.Response.Header.SetCanonical(xRequestID, id)
	u := p.first(&t, &ctx.Request)
	if u == nil {
		p.fail(ctx, id, fasthttp.StatusBadGateway, "no upstream is available")
		return
	}
	var conn net.Conn
	for {
		var err error
		u.Stats.Begin()
		if conn, err = p.dialUpgrade(u); err == nil {
			break
		}
		p.account(t.plan, u, outcome{Failed: true}, time.Now())
		if u = p.retry(&t); u == nil {
			p.failWith(ctx, id, err)
			return
		}
	}
	t.tellVersion(&ctx.Request.Header, u)
	var rec *record
	if j != nil {
		rec = t.follow(nil, j, ctx, id, u, nil)
	}

	start := time.Now()
	br := bufio.NewReader(conn)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if p.opts.ReadTimeout > 0 {
		conn.SetDeadline(time.Now().Add(p.opts.ReadTimeout))
	}
	err := writeUpgradeRequest(conn, ctx, upgrade)
	if err == nil {
		err = resp.Header.Read(br)
	}
	o := outcome{Duration: time.Since(start)}
	if err != nil {
		conn.Close()
		o.Failed = true
		p.account(t.plan, u, o, time.Now())
		rec.failed(ctx, nil, err)
		p.failWith(ctx, id, err)
		return
	}
	o.Status = resp.StatusCode()
	p.account(t.plan, u, o, time.Now())

	if o.Status != fasthttp.StatusSwitchingProtocols {
		// The upstream declined the upgrade: its answer is an ordinary
		// response, read whole (refusals are short) and passed on.
		err := resp.ReadBody(br, 1<<20)
		conn.Close()
		if err != nil {
			rec.failed(ctx, nil, err)
			p.failWith(ctx, id, err)
			return
		}
		copyResponseHeader(&ctx.Response.Header, &resp.Header)
		ctx.Response.Header.SetCanonical(xRequestID, id)
		ctx.Response.SetBody(resp.Body())
		ctx.SetConnectionClose()
		if rec != nil {
			rec.e.Status = o.Status
			rec.finish(int64(len(resp.Body())))
		}
		return
	}
	if rec != nil {
		rec.e.Status = o.Status
	}
	conn.SetDeadline(time.Time{})
	// The 101 goes out from the hijack handler: fasthttp skips a hijack
	// handler whose response it wrote when it is shutting down, which would
	// leave the upstream connection open and counted in flight for good.
	resp.Header.Del(requestIDHeader)
	resp.Header.SetCanonical(xRequestID, id)
	head := resp.Header.AppendBytes(nil)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		// The head's deadline (proxy.client_header_timeout) is still armed
		// on the client's side; an open tunnel has no time limit of its own.
		client.SetReadDeadline(time.Time{})
		u.Stats.Begin()
		defer u.Stats.Abandon()
		if rec != nil {
			defer rec.finish(0)
		}
		if _, err := client.Write(head); err != nil {
			conn.Close()
			return
		}
		splice(client, conn, br)
	})
}

func (p *Proxy) dialUpgrade(u *route.Upstream) (net.Conn, error) {
	pl := u.Transport.(*pool)
	d := &net.Dialer{Timeout: p.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	c, err := d.Dial("tcp", pl.addr)
	if err != nil {
		return nil, &dialError{err}
	}
	if !pl.tls {
		return c, nil
	}
	tc := tls.Client(c, pl.hc.TLSConfig)
	tc.SetDeadline(time.Now().Add(p.opts.ConnectTimeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, &dialError{err}
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// writeUpgradeRequest writes the client's request head to the upstream,
// as prepareRequest left it, and the upgrade the client asked for.
func writeUpgradeRequest(w io.Writer, ctx *fasthttp.RequestCtx, upgrade string) error {
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
	bw.WriteString(upgrade)
	bw.WriteString("\r\n\r\n")
	return bw.Flush()
}

// splice copies both ways until one side is done, then closes both.
func splice(client, upstream net.Conn, upstreamBuf *bufio.Reader) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			upstream.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		io.Copy(upstream, client)
		closeBoth()
		close(done)
	}()
	io.Copy(client, upstreamBuf)
	closeBoth()
	<-done
}
