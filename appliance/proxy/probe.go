package proxy

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// newProbePath is a request path only this process knows, answered by the
// proxy itself: the watchdog's proof that the proxy accepts and serves.
func newProbePath() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "/.canaryd-probe/" + hex.EncodeToString(b)
}

// isProbe reports whether ctx is this process's probe request.
func (p *Proxy) isProbe(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.Request.Header.RequestURI()) == p.probePath
}

// Probe sends the probe request to the proxy listening on addr and returns
// nil once the proxy answered it within timeout. No upstream is involved.
func (p *Proxy) Probe(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("proxy probe: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: canaryd\r\nConnection: close\r\n\r\n", p.probePath); err != nil {
		return fmt.Errorf("proxy probe: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("proxy probe: no answer: %w", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 204") {
		return fmt.Errorf("proxy probe: answered %q", strings.TrimSpace(line))
	}
	return nil
}
