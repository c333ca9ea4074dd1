package web_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/web"
)

// adminWithPage is the admin TCP handler as canaryd mounts it.
func adminWithPage(c admin.Controller, opts admin.HandlerOptions) *admin.Handler {
	h := admin.NewHandler(c, opts)
	h.HandleOpen("GET /{$}", web.Page())
	h.Handle("GET /metrics", web.Metrics(func() web.Snapshot { return web.Snapshot{} }))
	return h
}

func getPage(t *testing.T) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	web.Page().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestPageHeaders(t *testing.T) {
	res, body := getPage(t)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", res.StatusCode)
	}
	for name, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(body, "<!doctype html>") {
		t.Errorf("body starts %.40q, want an HTML document", body)
	}
}

// TestPageCSPAllowsOnlyItsOwnInlineCode: the policy names the page's own
// style and script by hash and allows nothing else to run, load or frame it.
func TestPageCSPAllowsOnlyItsOwnInlineCode(t *testing.T) {
	res, body := getPage(t)
	csp := res.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for d := range strings.SplitSeq(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	hash := func(tag string) string {
		m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(body, -1)
		if len(m) != 1 {
			t.Fatalf("page has %d <%s> elements, want 1", len(m), tag)
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"script-src":      hash("script"),
		"style-src":       hash("style"),
		"connect-src":     "'self'",
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
		"form-action":     "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("CSP %s: %q, want %q (whole policy: %s)", name, got, want, csp)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", csp)
	}
}

// TestPageIsSelfContained: the page works on a Pi with no internet, and
// loads nothing another host could change.
func TestPageIsSelfContained(t *testing.T) {
	_, body := getPage(t)
	for _, bad := range []struct{ what, re string }{
		{"an absolute URL", `(?i)\b(https?|wss?|ftp):`},
		{"a protocol-relative URL", `(?i)(src|href|action)\s*=\s*["']?//`},
		{"an external script", `(?i)<script[^>]*\bsrc\s*=`},
		{"a linked stylesheet", `(?i)<link[^>]*stylesheet`},
		{"a CSS import", `(?i)@import`},
		{"a CSS url()", `\burl\(`},
		{"an iframe or object", `(?i)<(iframe|object|embed)\b`},
		{"an inline event handler", `(?i)\son[a-z]+\s*=\s*["']`},
		{"a style attribute", `(?i)<[a-z][^>]*\sstyle\s*=`},
	} {
		if m := regexp.MustCompile(bad.re).FindString(body); m != "" {
			t.Errorf("page has %s: %q", bad.what, m)
		}
	}
}

// TestPageHasWhatTheOperatorNeeds: the elements the script fills and the
// buttons are there, as real buttons.
func TestPageHasWhatTheOperatorNeeds(t *testing.T) {
	_, body := getPage(t)
	for _, want := range []string{
		`id="status-led"`, `id="canary-led"`, `id="status-led-text"`, `id="canary-led-text"`,
		`id="state"`, `id="pct-canary"`, `id="verdict"`, `id="latch"`, `id="upstreams"`,
		`id="cfg-gen"`, `id="cfg-error"`,
		`id="fleet-name"`, `id="fleet-release"`, `id="fleet-link"`, `id="fleet-down"`, `id="fleet-members"`,
		`<button type="button" class="btn danger" id="rollback"`,
		`<button type="button" class="btn" id="resume"`,
		`<button type="button" class="btn" id="promote"`,
		`'v1/status'`, `'v1/fleet'`, `'Bearer '`, `localStorage`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// TestPageHidesTheFleetUntilTheStatusHasOne: the Fleet card is hidden in
// the markup itself, so a canaryd in no fleet never shows it, not even
// before its first status arrives.
func TestPageHidesTheFleetUntilTheStatusHasOne(t *testing.T) {
	_, body := getPage(t)
	tag := regexp.MustCompile(`<section[^>]*\sid="fleet-card"[^>]*>`).FindString(body)
	if tag == "" {
		t.Fatal(`the page has no <section id="fleet-card">`)
	}
	if !regexp.MustCompile(`\shidden[\s>]`).MatchString(tag) {
		t.Errorf("the Fleet card shows before any status: %s", tag)
	}
}

func TestPageOnTheAdminHandler(t *testing.T) {
	h := adminWithPage(admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api", Token: "secret", PublicRead: true})
	for _, tc := range []struct {
		method, path string
		code         int
		contentType  string
		body         bool
	}{
		{"GET", "/", http.StatusOK, "text/html; charset=utf-8", true},
		{"HEAD", "/", http.StatusOK, "text/html; charset=utf-8", false},
		{"GET", "/index.html", http.StatusNotFound, "application/json", true},
		{"POST", "/", http.StatusMethodNotAllowed, "application/json", true},
		{"GET", "/metrics", http.StatusOK, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", true},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
		if got := rec.Header().Get("Content-Type"); got != tc.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, got, tc.contentType)
		}
		if got := rec.Body.Len() > 0; got != tc.body {
			t.Errorf("%s %s: body of %d bytes, want a body: %v", tc.method, tc.path, rec.Body.Len(), tc.body)
		}
	}
}
