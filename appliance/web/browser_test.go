package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
)

// chromium is Debian's package "chromium", as CI installs it.
const chromium = "/usr/bin/chromium"

// wait bounds each step in the browser: the page polls every second, so
// anything it shows should show well within this.
const wait = 10 * time.Second

// startBrowser starts one headless Chromium for t and its subtests, each of
// which opens its own tab with newTab.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("drives headless Chromium: not in -short mode")
	}
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CANARYPI_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("CANARYPI_REQUIRE_CHROMIUM=1, but %v (apt-get install chromium)", err)
		}
		t.Skipf("%v: install Debian's chromium package to run this test", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		// Root in a container has no usable sandbox, and there is no GPU.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// The network is closed but for loopback: no calls home.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", chromium, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s", chromium)
	}
	return ctx
}

// tab is one browser tab and what its page wrote to the console.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		tb.checkConsole()
	})
	return tb
}

// checkConsole fails the test on an exception or an error the page did not
// ask for, such as a CSP violation: the answers 401 and 409 are expected,
// the page shows them, and Chromium logs them as failed loads; so is 404
// for the incident list of a canaryd that records none.
func (tb *tab) checkConsole() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console {
		expected := m.Source == "network" && (strings.Contains(m.Text, "status of 401") || strings.Contains(m.Text, "status of 409") ||
			strings.HasSuffix(m.URL, "/v1/incidents") && strings.Contains(m.Text, "status of 404"))
		if (m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning) && !expected {
			tb.t.Errorf("browser console: %s (source %q, %s:%d)", m, m.Source, m.URL, m.Line+1)
		}
	}
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true in the page.
func (tb *tab) waitFor(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		tb.t.Fatalf("waiting for %s (%s): %v\npage says: %s", what, expr, err, tb.text())
	}
}

// text is the page's visible text, for failure messages.
func (tb *tab) text() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return err.Error()
	}
	return strings.Join(strings.Fields(s), " ")
}

// led is the state the page shows for a light, as the attribute its CSS
// draws from and as the text a screen reader reads.
func led(tb *tab, which string) (state, text string) {
	tb.t.Helper()
	return eval[string](tb, `document.getElementById('`+which+`-led').dataset.state`),
		eval[string](tb, `document.getElementById('`+which+`-led-text').textContent`)
}

// lit reports whether a light is drawn lit now (its CSS applied) and
// whether it is blinking (a running CSS animation).
func lit(tb *tab, which string) (on, blinking bool) {
	tb.t.Helper()
	on = eval[string](tb, `getComputedStyle(document.getElementById('`+which+`-led'), '::before').opacity`) == "1"
	blinking = eval[bool](tb, `document.getAnimations().some(a =>
		a.animationName === 'blink' && a.playState === 'running' &&
		a.effect.target.id === '`+which+`-led' && a.effect.pseudoElement === '::before')`)
	return on, blinking
}

// server is the admin TCP handler with the page, as canaryd serves it, on
// a loopback port.
type server struct {
	url    string
	polls  atomic.Int64 // GET /v1/status so far
	fleets atomic.Int64 // GET /v1/fleet so far
}

func serveAdmin(t *testing.T, c admin.Controller, opts admin.HandlerOptions) *server {
	t.Helper()
	s := &server{}
	h := adminWithPage(c, opts)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			s.polls.Add(1)
		case "/v1/fleet":
			s.fleets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/"
	return s
}

// waitForPoll returns once the page has shown a status it asked for after
// the call: it polls one request at a time, so when the second poll from
// now arrives, the first has been answered and drawn.
func (s *server) waitForPoll(t *testing.T) {
	t.Helper()
	target := s.polls.Load() + 2
	deadline := time.Now().Add(wait)
	for s.polls.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the page stopped polling (%d polls)", s.polls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStatusPageInChromium(t *testing.T) {
	browser := startBrowser(t)

	t.Run("loads and shows the lights", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the first status", `document.getElementById('link').dataset.state === 'live'`)

		for _, which := range []string{"status", "canary"} {
			if state, text := led(tb, which); state != "green" || text != "Green" {
				t.Errorf("%s LED: state %q, text %q; want green, Green", which, state, text)
			}
			if on, blinking := lit(tb, which); !on || blinking {
				t.Errorf("%s LED: lit %v, blinking %v; want steadily lit", which, on, blinking)
			}
		}
		if got := eval[string](tb, `document.getElementById('state').textContent`); got != "Canary" {
			t.Errorf("state shows %q, want Canary", got)
		}
		if got := eval[string](tb, `document.getElementById('pct-canary').textContent`); got != "33.3%" {
			t.Errorf("canary share shows %q, want 33.3%%", got)
		}
		if got := eval[[]string](tb, `[...document.querySelectorAll('#upstreams .name')].map(e => e.textContent)`); !slices.Equal(got, []string{"w1", "w2"}) {
			t.Errorf("upstreams shown: %q, want w1 and w2", got)
		}
		if got := eval[[]string](tb, `[...document.querySelectorAll('button')].filter(b => b.dataset.action).map(b => b.id)`); !slices.Equal(got, []string{"rollback", "resume", "promote"}) {
			t.Errorf("action buttons: %q", got)
		}
		if calls := ctl.Calls(); len(calls) != 0 {
			t.Errorf("loading the page changed something: %q", calls)
		}
	})

	t.Run("its rollback button rolls back", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the canary light", `document.getElementById('canary-led').dataset.state === 'green'`)

		tb.do("clicking Roll back", chromedp.Click(chromedp.ID("rollback")))
		tb.waitFor("the canary light to blink red", `document.getElementById('canary-led').dataset.state === 'red-blink'`)
		if calls := ctl.Calls(); !slices.Equal(calls, []string{"Rollback(api)"}) {
			t.Errorf("controller calls: %q, want [Rollback(api)]", calls)
		}
		if got := ctl.Status().State; got != "rolled_back" {
			t.Errorf("daemon state %q, want rolled_back", got)
		}
		// The next poll keeps showing it: the page shows the daemon, not its own guess.
		srv.waitForPoll(t)
		if state, text := led(tb, "canary"); state != "red-blink" || text != "Red, blinking" {
			t.Errorf("canary LED: state %q, text %q; want red-blink", state, text)
		}
		if _, blinking := lit(tb, "canary"); !blinking {
			t.Error("canary LED: not blinking")
		}
		if got := eval[string](tb, `document.getElementById('latch').innerText`); !strings.Contains(got, "Rolled back v2 by the admin API") {
			t.Errorf("latch shows %q", got)
		}
		if got := eval[string](tb, `document.getElementById('notice').textContent`); !strings.HasPrefix(got, "Rolled back") {
			t.Errorf("notice says %q", got)
		}
	})

	t.Run("follows the daemon by polling", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the canary light", `document.getElementById('canary-led').dataset.state === 'green'`)

		// The physical button, behind the page's back.
		if err := ctl.Button(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		tb.waitFor("the canary light to blink red", `document.getElementById('canary-led').dataset.state === 'red-blink'`)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the page took %v to show the rollback; it polls every second", d)
		}
		tb.waitFor("the latch", `document.getElementById('latch').innerText.includes('by the button')`)

		tb.do("clicking Resume", chromedp.Click(chromedp.ID("resume")))
		tb.waitFor("the canary light to turn green", `document.getElementById('canary-led').dataset.state === 'green'`)
		if got := eval[bool](tb, `document.getElementById('latch').hidden`); !got {
			t.Error("the latch still shows after resume")
		}
	})

	t.Run("a refusal shows the daemon's reason", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		ctl.Refuse("Promote", errors.New("canary v2 is rolled back: resume first"))
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the first status", `document.getElementById('link').dataset.state === 'live'`)

		tb.do("clicking Promote", chromedp.Click(chromedp.ID("promote")))
		tb.waitFor("the refusal", `document.getElementById('notice').classList.contains('error')`)
		if got := eval[string](tb, `document.getElementById('notice').textContent`); got != "canary v2 is rolled back: resume first" {
			t.Errorf("notice says %q, want the daemon's reason", got)
		}
		if got := eval[bool](tb, `[...document.querySelectorAll('button[data-action]')].every(b => !b.disabled)`); !got {
			t.Error("buttons stay disabled after the refusal")
		}
	})

	t.Run("asks for the token and remembers it", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret", PublicRead: true})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the first status", `document.getElementById('link').dataset.state === 'live'`)

		tb.do("clicking Roll back", chromedp.Click(chromedp.ID("rollback")))
		tb.waitFor("the token form", `!document.getElementById('token-form').hidden`)
		if got := ctl.Status().State; got != "canary" {
			t.Fatalf("rolled back without the token: state %q", got)
		}
		tb.do("entering the token",
			chromedp.SendKeys(chromedp.ID("token"), "s3cret"),
			chromedp.Click(chromedp.ID("token-save")),
		)
		tb.waitFor("the canary light to blink red", `document.getElementById('canary-led').dataset.state === 'red-blink'`)
		if got := eval[string](tb, `localStorage.getItem('canaryd.token')`); got != "s3cret" {
			t.Errorf("stored token %q", got)
		}

		// Remembered: the next change needs no prompt.
		tb.do("clicking Resume", chromedp.Click(chromedp.ID("resume")))
		tb.waitFor("the canary light to turn green", `document.getElementById('canary-led').dataset.state === 'green'`)
		if calls := ctl.Calls(); !slices.Equal(calls, []string{"Rollback(api)", "Resume(api)"}) {
			t.Errorf("controller calls: %q", calls)
		}
		tb.do("clearing the token", chromedp.Evaluate[chromedp.Void](`localStorage.clear()`))
	})

	t.Run("without public_read asks for the token before it shows anything", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the token form", `!document.getElementById('token-form').hidden`)
		if got := eval[string](tb, `document.getElementById('link').dataset.state`); got == "live" {
			t.Errorf("the page is live without the token")
		}
		if got := eval[string](tb, `document.getElementById('token-why').textContent`); !strings.Contains(got, "public_read") {
			t.Errorf("the form says %q, want the daemon's reason", got)
		}
		tb.do("entering the token",
			chromedp.SendKeys(chromedp.ID("token"), "s3cret"),
			chromedp.Click(chromedp.ID("token-save")),
		)
		tb.waitFor("the first status", `document.getElementById('link').dataset.state === 'live'`)
		tb.waitFor("the canary light", `document.getElementById('canary-led').dataset.state === 'green'`)

		// One prompt: the changes use the same token.
		tb.do("clicking Roll back", chromedp.Click(chromedp.ID("rollback")))
		tb.waitFor("the canary light to blink red", `document.getElementById('canary-led').dataset.state === 'red-blink'`)
		if !eval[bool](tb, `document.getElementById('token-form').hidden`) {
			t.Error("the token form is shown again after the token was saved")
		}
		if calls := ctl.Calls(); !slices.Equal(calls, []string{"Rollback(api)"}) {
			t.Errorf("controller calls: %q", calls)
		}
		tb.do("clearing the token", chromedp.Evaluate[chromedp.Void](`localStorage.clear()`))
	})
}

// demoStatus is a status like the demo's after a bad canary: v2 answered
// 500s, the button rolled it back, and then an edit broke the config.
func demoStatus() map[string]any {
	s := admintest.Canary()
	s.State = "rolled_back"
	s.CanaryPercent = 0
	s.LEDs = admin.LEDs{Status: "green-blink", Canary: "red-blink"}
	s.Config = admin.ConfigInfo{
		Generation: 3, Dir: "/etc/canaryd", Files: []string{"canaryd.toml", "upstreams.toml"},
		Error: `upstreams.toml:14: upstream "w2": url "htp://127.0.0.3:8002": unsupported scheme "htp" (want http or https)`,
	}
	s.Latch = &admin.Latch{State: "rolled_back", Version: "v2", Cause: "button", At: time.Now().Add(-3 * time.Minute).UTC().Format(time.RFC3339)}
	s.Message = "rolled back by the button; resume to send traffic to v2 again"
	s.Upstreams = []admin.Upstream{
		{Name: "pong-v1", Role: "stable", URL: "http://127.0.0.1:41001", Weight: 10, Requests: 1840, Errors: 0, Healthy: true, InFlight: 1,
			WindowRequests: 212, ErrorRate: 0, RatePerMin: 424, LatencyP50Ms: 0.84, LatencyP99Ms: 6.2},
		{Name: "pong-v2", Role: "canary", URL: "http://127.0.0.1:41002", Weight: 5, Requests: 905, Errors: 93, Healthy: true,
			WindowRequests: 96, WindowErrors: 41, ErrorRate: 41.0 / 96, RatePerMin: 192, LatencyP50Ms: 1.9, LatencyP99Ms: 245},
	}
	s.Version = "v0.4.0"
	s.StartedAt = time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	var m map[string]any
	b, _ := json.Marshal(s)
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	m["verdict"] = map[string]any{
		"state": "bad", "auto_rollback": false, "window": "30s",
		"reason": "canary 42.7% errors (41 of 96) vs stable 0.0% (0 of 212); threshold 5%",
	}
	return m
}

// TestStatusPageScreenshots renders the page with demoStatus on a laptop
// and a phone and checks what an operator must see. The PNGs go to
// $CANARYPI_SCREENSHOT_DIR when set, to look at.
func TestStatusPageScreenshots(t *testing.T) {
	browser := startBrowser(t)
	status := demoStatus()
	mux := http.NewServeMux()
	mux.Handle("/", adminWithPage(admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api"}))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dir := screenshotDir(t)
	for _, size := range viewports {
		t.Run(size.name, func(t *testing.T) {
			tb := newTab(t, browser)
			tb.do("loading the page",
				chromedp.EmulateViewport(size.width, size.height, size.opts...),
				chromedp.Navigate(srv.URL+"/"),
			)
			tb.waitFor("the status", `document.getElementById('link').dataset.state === 'live'`)
			if state, _ := led(tb, "status"); state != "green-blink" {
				t.Errorf("status LED %q, want green-blink", state)
			}
			if got := eval[[]string](tb, `[...document.querySelectorAll('#cfg-error .pos')].map(e => e.textContent + ' ' + getComputedStyle(e).color)`); len(got) != 1 || !strings.HasPrefix(got[0], "upstreams.toml:14 rgb(") {
				t.Errorf("highlighted config positions: %q, want upstreams.toml:14", got)
			}
			if got := eval[string](tb, `document.getElementById('verdict').textContent`); got != "Bad" {
				t.Errorf("verdict shows %q", got)
			}
			if got := eval[int](tb, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); got > 0 {
				t.Errorf("the page scrolls sideways by %dpx", got)
			}
			// Both blinking lights caught in their lit half.
			tb.do("freezing the blink", chromedp.Evaluate[chromedp.Void](`document.getAnimations().forEach(a => { a.pause(); a.currentTime = 0; })`))
			tb.screenshot(filepath.Join(dir, "canaryd-status-"+size.name+".png"), chromedp.FullScreenshot(100))
		})
	}
}

// viewports are the screens the page is looked at on: a laptop and a phone.
var viewports = []struct {
	name          string
	width, height int64
	opts          []chromedp.EmulateViewportOption
}{
	{"laptop", 1280, 900, nil},
	{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch}},
}

// screenshotDir is $CANARYPI_SCREENSHOT_DIR when set, to look at the
// PNGs, else a directory the test removes.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("CANARYPI_SCREENSHOT_DIR"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// screenshot takes shot in the tab and writes the PNG to path.
func (tb *tab) screenshot(path string, shot chromedp.Action[[]byte]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
}
