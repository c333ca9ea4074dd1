package proxy

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// BenchmarkPrepareRequest is the header scan of every request, for a
// browser's request head: without an id of its own, and with one.
func BenchmarkPrepareRequest(b *testing.B) {
	cfg := &config.Config{
		Upstreams: []config.Upstream{{Name: "v1", Role: config.Stable, Weight: 1}, {Name: "v2", Role: config.Canary, Weight: 1}},
		Canary:    config.CanaryPolicy{Version: "v2", VersionHeader: "X-Canary-Version"},
	}
	plan := route.NewPlan(cfg, state.Canary, nil)
	p := &Proxy{ids: newIDs()}
	for _, c := range []struct{ name, extra string }{{"new id", ""}, {"client id", "X-Request-Id: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n"}} {
		b.Run(c.name, func(b *testing.B) {
			var tmpl fasthttp.RequestHeader
			tmpl.DisableNormalizing()
			head := "GET /index.html?q=1 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: Mozilla/5.0\r\n" +
				"Accept: text/html,*/*;q=0.8\r\nAccept-Language: en\r\nAccept-Encoding: gzip, br\r\n" +
				"Cookie: uid=42; theme=dark\r\nConnection: keep-alive\r\n" + c.extra + "\r\n"
			if err := tmpl.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
				b.Fatal(err)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}, nil)
			ctx.Request.Header.DisableNormalizing()
			b.ReportAllocs()
			for b.Loop() {
				tmpl.CopyTo(&ctx.Request.Header)
				var id idBuf
				p.prepareRequest(&ctx, plan, &id)
			}
		})
	}
}
