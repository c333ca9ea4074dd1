package web_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/incident"
)

// withIncidents is the demo's controller with three reports: one an hour
// old, one of yesterday, and an incomplete one of last week.
func withIncidents(now time.Time) *admintest.Controller {
	ctl := admintest.NewController(admintest.Canary())
	week := admintest.Report("v1.9.0-rc2", now.Add(-7*24*time.Hour).Truncate(time.Second))
	week.Lost, week.Note = 512, "incomplete"
	ctl.SetIncidents(
		admintest.Report("v2", now.Add(-time.Hour).Truncate(time.Second)),
		admintest.Report("v2-beta", now.Add(-26*time.Hour).Truncate(time.Second)),
		week)
	return ctl
}

// listed is what the Incidents card shows: each item's text and links.
const listed = `[...document.querySelectorAll('#incidents li')].map(li => ({
	text: li.innerText.replace(/\s+/g, ' '),
	report: li.querySelector('a.what').href,
	csv: li.querySelector('a.csv').href,
}))`

type item struct {
	Text   string `json:"text"`
	Report string `json:"report"`
	CSV    string `json:"csv"`
}

func TestStatusPageListsIncidentsInChromium(t *testing.T) {
	browser := startBrowser(t)
	now := time.Now()

	t.Run("lists the reports newest first, each linked to its text and CSV", func(t *testing.T) {
		ctl := withIncidents(now)
		sums, _ := ctl.Incidents()
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret", PublicRead: true})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the incidents", `document.querySelectorAll('#incidents li').length === 3`)
		items := eval[[]item](tb, listed)
		for i, sum := range sums {
			base := srv.url + "v1/incidents/" + sum.ID
			if items[i].Report != base+"?format=text" || items[i].CSV != base+"?format=csv" {
				t.Errorf("item %d links to %s and %s, want %s?format=text and ?format=csv", i, items[i].Report, items[i].CSV, base)
			}
			if !strings.Contains(items[i].Text, "Rolled back "+sum.Version+" by the button") ||
				!strings.Contains(items[i].Text, "live 15m 0s, 2 writes, 2 users") {
				t.Errorf("item %d says %q", i, items[i].Text)
			}
		}
		if !strings.Contains(items[0].Text, "(1 h ago)") || !strings.Contains(items[2].Text, "2 users incomplete") || strings.Contains(items[0].Text, "incomplete") {
			t.Errorf("items %q, %q: want the newest first and the incomplete one marked", items[0].Text, items[2].Text)
		}
		if eval[bool](tb, `!document.getElementById('incidents-note').hidden`) {
			t.Error("the empty note shows beside a list")
		}

		res, err := http.Get(items[0].CSV)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(string(body), strings.Join(incident.CSVHeader, ",")+"\n") {
			t.Errorf("the CSV link answers %s:\n%s", res.Status, body)
		}

		tb.do("following the report's link", chromedp.Click(`#incidents li:first-child a.what`), chromedp.WaitReady(`body`))
		tb.waitFor("the report's text", `document.body.innerText.startsWith('incident  `+sums[0].ID+`')`)
		if got := eval[string](tb, `document.body.innerText`); !strings.Contains(got, "r-2") || !strings.Contains(got, "/orders/7") {
			t.Errorf("the report page shows:\n%s", got)
		}
	})

	t.Run("without public_read the reports open with the saved token", func(t *testing.T) {
		ctl := withIncidents(now)
		sums, _ := ctl.Incidents()
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the token form", `!document.getElementById('token-form').hidden`)
		tb.do("entering the token",
			chromedp.SendKeys(chromedp.ID("token"), "s3cret"),
			chromedp.Click(chromedp.ID("token-save")),
		)
		tb.waitFor("the incidents", `document.querySelectorAll('#incidents li').length === 3`)
		// The report opens in a new window from memory: stand-ins record
		// where, and what.
		tb.do("standing in for window.open", chromedp.Evaluate[chromedp.Void](`window.opened = {}; window.open = () => window.opened;
			const made = URL.createObjectURL; URL.createObjectURL = (b) => { b.text().then(t => { window.report = t; }); return made(b); }`))
		tb.do("following the report's link", chromedp.Click(`#incidents li:first-child a.what`))
		tb.waitFor("the report in memory", `String(window.opened.location || '').startsWith('blob:')`)
		tb.waitFor("the report's text", `(window.report || '').startsWith('incident  `+sums[0].ID+`')`)
		tb.do("clearing the token", chromedp.Evaluate[chromedp.Void](`localStorage.clear()`))
	})

	t.Run("says so when there are none", func(t *testing.T) {
		srv := serveAdmin(t, admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the empty note", `document.getElementById('incidents-note').textContent === 'No rollbacks yet.'`)
		if n := eval[int](tb, `document.querySelectorAll('#incidents li').length`); n != 0 {
			t.Errorf("%d items without incidents", n)
		}
	})

	t.Run("says so when this canaryd records none", func(t *testing.T) {
		srv := serveAdmin(t, olderController{admintest.NewController(admintest.Canary())}, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the note", `document.getElementById('incidents-note').textContent === 'This canaryd does not record incident reports.'`)
	})
}

// olderController is the controller of a canaryd without incident reports.
type olderController struct{ admin.Controller }

// TestIncidentsScreenshots renders the Incidents card with reports and
// without on a laptop and a phone; the PNGs go to
// $CANARYPI_SCREENSHOT_DIR when set, to look at.
func TestIncidentsScreenshots(t *testing.T) {
	browser := startBrowser(t)
	dir := screenshotDir(t)
	for _, tc := range []struct {
		name string
		ctl  *admintest.Controller
		n    int
	}{
		{"incidents", withIncidents(time.Now()), 3},
		{"no-incidents", admintest.NewController(admintest.Canary()), 0},
	} {
		srv := serveAdmin(t, tc.ctl, admin.HandlerOptions{Cause: "api"})
		for _, size := range viewports {
			t.Run(tc.name+"/"+size.name, func(t *testing.T) {
				tb := newTab(t, browser)
				tb.do("loading the page",
					chromedp.EmulateViewport(size.width, size.height, size.opts...),
					chromedp.Navigate(srv.url),
				)
				tb.waitFor("the incidents", `document.getElementById('incidents-note').textContent !== 'waiting for the daemon…' &&
					document.querySelectorAll('#incidents li').length === `+itoa(tc.n))
				if got := eval[int](tb, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); got > 0 {
					t.Errorf("the page scrolls sideways by %dpx", got)
				}
				tb.screenshot(filepath.Join(dir, "canaryd-"+tc.name+"-"+size.name+".png"), chromedp.Screenshot(`#incidents-card`))
			})
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
