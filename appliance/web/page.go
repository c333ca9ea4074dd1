// Package web is canaryd's face for browsers and scrapers: the status page
// an operator opens next to the Pi, and the Prometheus /metrics endpoint.
// Both are served beside the admin API, on its unix socket and on the admin
// TCP listener when there is one; neither touches the proxy's hot path.
package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
)

// The page is one file with its style and script inline, so the binary
// carries it whole and it works with no network but the Pi's.
//
//go:embed status.html
var page []byte

// pageCSP allows exactly the inline style and script the page was built
// with, by hash: an injected <script> or a changed copy runs nowhere. The
// page talks only to its own origin, and no other site may frame it, which
// keeps its rollback button from being clickjacked.
var pageCSP = func() string {
	return fmt.Sprintf("default-src 'none'; script-src '%s'; style-src '%s'; "+
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		inlineHash(page, "script"), inlineHash(page, "style"))
}()

// inlineHash returns the CSP source ('sha256-...') of the one <tag> element
// in html. The page is ours and embedded, so a missing or second element is
// a bug caught by any test that loads the package.
func inlineHash(html []byte, tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	i := bytes.Index(html, open)
	if i < 0 || bytes.Count(html, open) != 1 {
		panic(fmt.Sprintf("web: status.html must have exactly one <%s> element", tag))
	}
	body := html[i+len(open):]
	j := bytes.Index(body, end)
	if j < 0 {
		panic(fmt.Sprintf("web: status.html: <%s> is not closed", tag))
	}
	sum := sha256.Sum256(body[:j])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Page serves the status page. It reads everything it shows from
// v1/status, relative to itself, and sends rollback, resume and promote as
// same-origin POSTs, so it belongs on the admin handler at "GET /{$}".
func Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		// The page is tiny and must match the running daemon's API.
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Frame-Options", "DENY") // for browsers older than frame-ancestors
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.Method == http.MethodHead {
			return
		}
		// A failed write means the browser went away.
		_, _ = w.Write(page)
	})
}
