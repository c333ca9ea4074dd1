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

// upgrade is one attempt of a protocol upgrade (WebSocket) on u, the
// request's life being serve's: the request goes to u on a connection of
// its own, and once u answers 101 the two connections are spliced until
// either side closes. An answer other than 101 is passed on as it is.
//
// It returns an error only when u failed before it answered (refused,
// reset, timed out), which serve may retry elsewhere; from u's answer on,
// the upgrade is done with, and answered. A canary's upgrade is journaled
// at its end: when the spliced connection closes, or when u's refusal was
// passed on.
func (p *Proxy) upgrade(ctx *fasthttp.RequestCtx, plan *route.Plan, u *route.Upstream, upgrade []byte, id []byte, rec *record) error {
	u.Stats.Begin()
	start := time.Now()
	conn, err := p.tunnel(p.poolOf(u))
	var br *bufio.Reader
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err == nil {
		br = bufio.NewReader(conn)
		if p.opts.ReadTimeout > 0 {
			conn.SetDeadline(time.Now().Add(p.opts.ReadTimeout))
		}
		if err = writeUpgradeRequest(conn, ctx, upgrade); err == nil {
			err = resp.Header.Read(br)
		}
	}
	o := outcome{Duration: time.Since(start)}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		o.Failed = true
		p.account(plan, u, o, time.Now())
		return err
	}
	o.Status = resp.StatusCode()
	p.account(plan, u, o, time.Now())
	if rec != nil {
		rec.e.Status = o.Status
	}

	if o.Status != fasthttp.StatusSwitchingProtocols {
		// The upstream declined the upgrade: its answer is an ordinary
		// response, read whole (refusals are short) and passed on.
		err := resp.ReadBody(br, 1<<20)
		conn.Close()
		if err != nil {
			rec.failed(ctx, nil, err)
			p.failWith(ctx, id, err)
			return nil
		}
		copyResponseHeader(&ctx.Response.Header, &resp.Header)
		ctx.Response.Header.SetCanonical(xRequestID, id)
		ctx.Response.SetBody(resp.Body())
		ctx.SetConnectionClose()
		if rec != nil {
			rec.finish(int64(len(resp.Body())))
		}
		return nil
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
	return nil
}

// tunnel connects to pl's upstream for an upgrade: a connection of its own,
// outside the pool, without the pool's per-read deadlines, since an open
// tunnel may be silent for as long as its two ends like.
func (p *Proxy) tunnel(pl *pool) (net.Conn, error) {
	c, err := pl.connect(pl.addr)
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
