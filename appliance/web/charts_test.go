package web_test

import (
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/history"
)

// badCanaryHistory is fifteen minutes of a canary going bad: a step to 25%
// ten minutes ago, the canary's errors and p99 rising over the last five
// minutes, a rollback three minutes ago, and no canary traffic since.
func badCanaryHistory(now time.Time) history.Snapshot {
	h := history.New()
	start := now.Add(-history.Span + history.Interval)
	var canary, stable history.Totals
	for i := range history.Size {
		at := start.Add(time.Duration(i) * history.Interval)
		ago := now.Sub(at)
		stable.Requests += 100 + uint64(i%7)*3
		stable.Errors += uint64(i % 40 / 39)
		stable.P99 = 6*time.Millisecond + time.Duration(i%5)*time.Millisecond
		switch {
		case ago < 3*time.Minute: // rolled back: no canary traffic, no p99
			canary.P99 = 0
		case ago < 5*time.Minute: // going bad
			n := uint64(5*time.Minute-ago) / uint64(time.Second)
			canary.Requests += 35
			canary.Errors += min(35, n/4)
			canary.P99 = 20*time.Millisecond + time.Duration(n)*2*time.Millisecond
		default:
			canary.Requests += 35
			canary.P99 = 9 * time.Millisecond
		}
		ev := history.Evidence{Errors: 0.6 + 0.1*float64(i%3), Latency: 0.8}
		switch {
		case ago < 3*time.Minute: // judged bad, rolled back: frozen
			ev.Errors = 2e4
		case ago < 5*time.Minute:
			ev.Errors = math.Pow(10, 4.3*float64(5*time.Minute-ago)/float64(2*time.Minute))
		}
		h.Record(at, canary, stable, ev)
	}
	h.Mark(now.Add(-10*time.Minute), history.Step, 25, "step 2 of 4: 25%")
	h.Mark(now.Add(-3*time.Minute), history.Rollback, 0, "rollback of v2 automatically: canary 42.7% errors (41 of 96)")
	return h.Snapshot(now)
}

// withRollout is the canary status on step 2 of 4, the next due in 4m 10s,
// with a verdict and its evidence.
func withRollout(next time.Time, holding string) admin.Status {
	s := admintest.Canary()
	s.Verdict = &admin.Verdict{State: analysis.Good, Reason: "canary 3 of 12 errors at a 25% share (3.0 expected at equal rates): 0.7x more likely than at equal rates; bad at 150x",
		Evidence: 0.7, Threshold: 150, Errors: &admin.Test{Evidence: 0.7, Threshold: 150, CanaryEvents: 3, Events: 12, Expected: 3, Share: 0.25},
		Latency: &admin.Test{Evidence: 0.8, Threshold: 300}, FalseAlarm: 0.01, Window: "30s"}
	s.CanaryPercent = 25
	at := next.UTC().Format(time.RFC3339)
	s.Rollout = &admin.Rollout{Steps: []float64{5, 25, 50, 100}, Step: 1, Percent: 25,
		Entered: next.Add(-5 * time.Minute).UTC().Format(time.RFC3339), NextAt: &at}
	if holding != "" {
		s.Rollout.NextAt, s.Rollout.Holding = nil, holding
	}
	return s
}

// chartPaths are the d attributes of each chart's lines, by chart and role
// (the evidence chart's, by test).
const chartPaths = `Object.fromEntries(['rps', 'err', 'p99'].map(c => [c, Object.fromEntries(
	[...document.querySelectorAll('#chart-' + c + ' path.ln')].map(p => [p.dataset.role, p.getAttribute('d')]))]))`

// A line is moves and segments to points with finite coordinates, and
// "h0" for a dot where a point stands alone.
var (
	pathSyntax = regexp.MustCompile(`^M-?\d+(\.\d+)? -?\d+(\.\d+)?( [ML]-?\d+(\.\d+)? -?\d+(\.\d+)?| h0)*$`)
	pathPoint  = regexp.MustCompile(`[ML](-?[\d.]+) (-?[\d.]+)`)
)

// coords parses a line's points, failing on anything but numbers.
func coords(t *testing.T, what, d string) [][2]float64 {
	t.Helper()
	if !pathSyntax.MatchString(d) {
		t.Fatalf("%s: path %q is not all finite points", what, d)
	}
	var out [][2]float64
	for _, m := range pathPoint.FindAllStringSubmatch(d, -1) {
		x, errX := strconv.ParseFloat(m[1], 64)
		y, errY := strconv.ParseFloat(m[2], 64)
		if errX != nil || errY != nil {
			t.Fatalf("%s: point %q", what, m[0])
		}
		out = append(out, [2]float64{x, y})
	}
	return out
}

func TestStatusPageChartsInChromium(t *testing.T) {
	browser := startBrowser(t)

	t.Run("draws both roles, the marks and the rollout", func(t *testing.T) {
		ctl := admintest.NewController(withRollout(time.Now().Add(4*time.Minute+10*time.Second), ""))
		ctl.SetHistory(badCanaryHistory(time.Now()))
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the charts", `document.getElementById('charts').dataset.state === 'data'`)

		paths := eval[map[string]map[string]string](tb, chartPaths)
		for _, c := range []string{"rps", "err", "p99"} {
			for _, role := range []string{"stable", "canary"} {
				d, ok := paths[c][role]
				if !ok {
					t.Errorf("chart %s: no %s line", c, role)
					continue
				}
				for _, p := range coords(t, c+" "+role, d) {
					if p[0] < 0 || p[0] > 2000 || p[1] < 0 || p[1] > 150 {
						t.Errorf("chart %s, %s: point %v outside the chart", c, role, p)
					}
				}
			}
		}
		// The canary's errors rise: its line ends higher (a smaller y) than it starts.
		if errs := coords(t, "err canary", paths["err"]["canary"]); len(errs) < 2 || errs[len(errs)-1][1] >= errs[0][1] {
			t.Errorf("the canary's error line does not rise: %v", errs)
		}
		for _, c := range []string{"rps", "err", "p99"} {
			if n := eval[int](tb, `document.querySelectorAll('#chart-`+c+` line.mark.rollback').length`); n != 1 {
				t.Errorf("chart %s: %d rollback marks, want 1", c, n)
			}
			if n := eval[int](tb, `document.querySelectorAll('#chart-`+c+` path.glyph.rollback').length`); n != 1 {
				t.Errorf("chart %s: %d rollback glyphs, want 1: the mark must not need colour to be told apart", c, n)
			}
			if n := eval[int](tb, `document.querySelectorAll('#chart-`+c+` line.mark.step').length`); n != 1 {
				t.Errorf("chart %s: %d step marks, want 1", c, n)
			}
		}
		if got := eval[string](tb, `document.getElementById('charts').textContent`); strings.Contains(got, "NaN") || strings.Contains(got, "Infinity") || strings.Contains(got, "undefined") {
			t.Errorf("the charts show %q", got)
		}
		if got := eval[string](tb, `document.getElementById('chart-legend').innerText`); !strings.Contains(got, "stable") || !strings.Contains(got, "canary") {
			t.Errorf("legend %q", got)
		}
		if got := eval[string](tb, `document.getElementById('chart-rps').getAttribute('aria-label')`); !regexp.MustCompile(`^Requests per second, last 15 minutes: stable \d+/s, canary 0/s$`).MatchString(got) {
			t.Errorf("the requests chart reads %q to a screen reader", got)
		}
		if got := eval[[]string](tb, `[...document.querySelectorAll('#chart-err text')].map(e => e.textContent)`); !slices.Contains(got, "now") || !slices.Contains(got, "15m ago") || !slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, "%") }) {
			t.Errorf("error chart's axis labels: %q", got)
		}
		if got := eval[string](tb, `document.querySelector('#events li').innerText`); !strings.Contains(got, "rollback → 0%") || !strings.Contains(got, "3 min ago") {
			t.Errorf("the latest event reads %q", got)
		}

		if got := eval[[]string](tb, `[...document.querySelectorAll('#rollout-steps li b')].map(e => e.textContent)`); !slices.Equal(got, []string{"5%", "25%", "50%", "100%"}) {
			t.Errorf("rollout steps %q", got)
		}
		if got := eval[string](tb, `document.querySelector('#rollout-steps li.now b').textContent`); got != "25%" {
			t.Errorf("the current step shows %q, want 25%%", got)
		}
		if got := eval[string](tb, `document.getElementById('rollout-note').textContent`); !regexp.MustCompile(`^At 25% \(step 2 of 4\) · next in 4m (10|[0-9])s, to 50%$`).MatchString(got) {
			t.Errorf("rollout note %q", got)
		}
	})

	t.Run("a held rollout says why", func(t *testing.T) {
		ctl := admintest.NewController(withRollout(time.Now(), "the canary has too few requests for a verdict (3 of 20)"))
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the rollout", `!document.getElementById('rollout-card').hidden`)
		if got := eval[string](tb, `document.getElementById('rollout-note').textContent`); got != "At 25% (step 2 of 4) · holding: the canary has too few requests for a verdict (3 of 20)" {
			t.Errorf("rollout note %q", got)
		}
	})

	t.Run("a pause in sampling breaks the lines", func(t *testing.T) {
		// Ten samples, a minute the daemon did not sample (a restart), one
		// sample alone, another gap, and five more.
		now := time.Now()
		h := history.New()
		var n uint64
		for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 22, 40, 41, 42, 43, 44} {
			n += 50
			h.Record(now.Add(time.Duration(i-44)*history.Interval), history.Totals{Requests: n / 2, P99: time.Millisecond}, history.Totals{Requests: n, P99: time.Millisecond}, history.Evidence{})
		}
		ctl := admintest.NewController(admintest.Canary())
		ctl.SetHistory(h.Snapshot(now))
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the charts", `document.getElementById('charts').dataset.state === 'data'`)
		paths := eval[map[string]map[string]string](tb, chartPaths)
		for _, c := range []string{"rps", "err", "p99"} {
			d := paths[c]["stable"]
			coords(t, c, d)
			if got := strings.Count(d, "M"); got != 3 {
				t.Errorf("chart %s: the stable line has %d runs, want 3: %q", c, got, d)
			}
			if !strings.Contains(d, " h0 M") {
				t.Errorf("chart %s: the lone sample is not drawn as a dot: %q", c, d)
			}
		}
	})

	t.Run("an empty history says there is no traffic yet", func(t *testing.T) {
		ctl := admintest.NewController(admintest.Canary())
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the charts", `document.getElementById('charts').dataset.state === 'empty'`)
		if got := eval[[]string](tb, `[...document.querySelectorAll('#charts text.none')].map(e => e.textContent)`); !slices.Equal(got, []string{"no traffic yet", "no traffic yet", "no traffic yet", "no traffic yet"}) {
			t.Errorf("empty charts say %q", got)
		}
		if n := eval[int](tb, `document.querySelectorAll('#charts path.ln').length`); n != 0 {
			t.Errorf("%d lines drawn without traffic", n)
		}
		if !eval[bool](tb, `document.getElementById('rollout-card').hidden`) {
			t.Error("a rollout strip shows without canary.steps")
		}
	})

	dir := screenshotDir(t)
	for _, size := range viewports {
		t.Run("screenshot on a "+size.name, func(t *testing.T) {
			ctl := admintest.NewController(withRollout(time.Now().Add(4*time.Minute+10*time.Second), ""))
			ctl.SetHistory(badCanaryHistory(time.Now()))
			srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
			tb := newTab(t, browser)
			tb.do("loading the page",
				chromedp.EmulateViewport(size.width, size.height, size.opts...),
				chromedp.Navigate(srv.url),
			)
			tb.waitFor("the charts", `document.getElementById('charts').dataset.state === 'data'`)
			if got := eval[int](tb, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); got > 0 {
				t.Errorf("the page scrolls sideways by %dpx", got)
			}
			// The evidence: both tests' lines, each with the line it turns
			// bad at, the errors' crossing it before the rollback.
			tb.waitFor("the evidence chart", `document.querySelectorAll('#chart-ev path.ln').length === 2`)
			if n := eval[int](tb, `document.querySelectorAll('#chart-ev line.bad-at').length`); n != 2 {
				t.Errorf("%d threshold lines on the evidence chart, want 2 (errors, latency)", n)
			}
			if got := eval[string](tb, `document.getElementById('verdict-evidence').textContent`); !strings.Contains(got, "errors 0.7x (bad at 150x)") || !strings.Contains(got, "latency 0.8x (bad at 300x)") {
				t.Errorf("the evidence row says %q", got)
			}
			// No axis label leaves its chart.
			if got := eval[[]string](tb, `[...document.querySelectorAll('#charts svg')].flatMap(svg => {
				const b = svg.getBoundingClientRect();
				return [...svg.querySelectorAll('text')].filter(t => { const r = t.getBoundingClientRect();
					return r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5; })
					.map(t => svg.id + ': ' + t.textContent); })`); len(got) > 0 {
				t.Errorf("labels outside their chart: %q", got)
			}
			// The whole page, and the two new cards close up.
			for name, shot := range map[string]chromedp.Action[[]byte]{
				"":         chromedp.FullScreenshot(100),
				"-rollout": chromedp.Screenshot(chromedp.ID("rollout-card")),
				"-history": chromedp.Screenshot(chromedp.ID("history-card")),
			} {
				tb.screenshot(filepath.Join(dir, "canaryd-charts-"+size.name+name+".png"), shot)
			}
		})
	}
}
