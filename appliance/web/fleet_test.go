package web_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// inFleet is the demo's controller as shop-12 of release canary-pi, at
// step 2 of its rollout, beside shop-07, which rolled v2 back on a bad
// verdict, and shop-31, unreachable for two minutes. connected is
// whether shop-12 itself reaches the fleet.
func inFleet(now time.Time, connected bool) *admintest.Controller {
	s := admintest.Canary()
	s.CanaryPercent = 25
	reporting := 2
	if !connected {
		reporting = 0
	}
	s.Fleet = &admin.Fleet{Name: "shop-12", Release: "canary-pi", Connected: connected, Members: reporting}
	ctl := admintest.NewController(s)
	step := func(i int) *int { return &i }
	at := func(d time.Duration) string { return now.Add(-d).UTC().Format(time.RFC3339) }
	ctl.SetMembers(
		admin.FleetMember{Name: "shop-07", Connected: true, LastSeen: at(0), State: state.RolledBack, Verdict: "bad",
			CanaryVersion: "v2", CanaryPercent: 0, Step: step(1), RequestsPerMinute: 312},
		admin.FleetMember{Name: "shop-12", Self: true, Connected: connected, LastSeen: at(0), State: state.Canary, Verdict: "good",
			CanaryVersion: "v2", CanaryPercent: 25, Step: step(1), RequestsPerMinute: 1480},
		admin.FleetMember{Name: "shop-31", Connected: false, LastSeen: at(2*time.Minute + 5*time.Second), State: state.Canary, Verdict: "not_enough_traffic",
			CanaryVersion: "v2", CanaryPercent: 5, Step: step(0), RequestsPerMinute: 4.2},
	)
	return ctl
}

// member is one row of the Fleet card, as its cells read.
type member struct {
	Name    string `json:"name"`
	Self    bool   `json:"self"`
	Seen    string `json:"seen"`
	State   string `json:"state"`
	Verdict string `json:"verdict"`
	Canary  string `json:"canary"`
	Step    string `json:"step"`
	Rate    string `json:"rate"`
	Alert   bool   `json:"alert"`
}

const fleetRows = `[...document.querySelectorAll('#fleet-members tr')].map(tr => {
	const c = (label) => tr.querySelector('td[data-label="' + label + '"]').innerText.replace(/\s+/g, ' ').trim();
	return {
		name: tr.querySelector('.name').textContent, self: !!tr.querySelector('.self'),
		seen: c('Seen'), state: c('State'), verdict: c('Verdict'), canary: c('Canary'), step: c('Step'), rate: c('Rate'),
		alert: tr.classList.contains('alert'),
	};
})`

func TestStatusPageShowsTheFleetInChromium(t *testing.T) {
	browser := startBrowser(t)

	t.Run("without a fleet there is no Fleet card, and no member is asked for", func(t *testing.T) {
		srv := serveAdmin(t, admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the first status", `document.getElementById('link').dataset.state === 'live'`)
		srv.waitForPoll(t)
		if !eval[bool](tb, `document.getElementById('fleet-card').hidden && document.getElementById('fleet-card').getClientRects().length === 0`) {
			t.Error("the Fleet card shows without a fleet")
		}
		if strings.Contains(tb.text(), "Fleet") {
			t.Errorf("the page mentions a fleet: %s", tb.text())
		}
		if n := srv.fleets.Load(); n != 0 {
			t.Errorf("the page asked for the members %d times outside a fleet", n)
		}
	})

	t.Run("lists every member with its state, the rolled back one marked", func(t *testing.T) {
		srv := serveAdmin(t, inFleet(time.Now(), true), admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the members", `document.querySelectorAll('#fleet-members tr[data-state]').length === 3`)
		if got := eval[string](tb, `document.querySelector('#fleet-card .fleethead').innerText`); !strings.Contains(got, "shop-12 in release canary-pi") || !strings.Contains(got, "connected · 2 members reporting") {
			t.Errorf("the fleet's line reads %q", got)
		}
		if !eval[bool](tb, `document.getElementById('fleet-down').hidden`) {
			t.Error("the unreachable note shows while connected")
		}
		rows := eval[[]member](tb, fleetRows)
		want := []member{
			{Name: "shop-07", Seen: "connected", State: "Rolled back", Verdict: "Bad", Canary: "v2 0% of requests", Step: "2", Rate: "312/min", Alert: true},
			{Name: "shop-12", Self: true, Seen: "connected", State: "Canary", Verdict: "Good", Canary: "v2 25% of requests", Step: "2", Rate: "1480/min"},
			{Name: "shop-31", Seen: "last seen 2 min ago", State: "Canary", Verdict: "Not enough traffic", Canary: "v2 5% of requests", Step: "1", Rate: "4.2/min"},
		}
		if !slices.Equal(rows, want) {
			t.Errorf("the members read\n%+v\nwant\n%+v", rows, want)
		}
		if got := eval[string](tb, `getComputedStyle(document.querySelector('#fleet-members tr.alert td')).backgroundColor`); got == "rgba(0, 0, 0, 0)" {
			t.Error("the rolled back member is not drawn apart from the others")
		}
		if got := eval[string](tb, `document.querySelector('#fleet-members tr:last-child .health').className`); got != "health gone" {
			t.Errorf("the unreachable member's Seen is drawn as %q, want health gone", got)
		}
	})

	t.Run("follows the members by polling", func(t *testing.T) {
		now := time.Now()
		ctl := inFleet(now, true)
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the members", `document.querySelectorAll('#fleet-members tr[data-state]').length === 3`)

		members := ctl.Members()
		members[2].Connected, members[2].LastSeen, members[2].State = true, now.UTC().Format(time.RFC3339), state.RolledBack
		ctl.SetMembers(members...)
		start := time.Now()
		tb.waitFor("shop-31 back and rolled back", `document.querySelector('#fleet-members tr:last-child').innerText.includes('Rolled back')`)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the page took %v to show the change; it polls every second", d)
		}
		if got := eval[[]member](tb, fleetRows)[2]; got.Seen != "connected" || !got.Alert {
			t.Errorf("shop-31 reads %+v, want connected and marked", got)
		}
	})

	t.Run("an unreachable fleet says what still works", func(t *testing.T) {
		srv := serveAdmin(t, inFleet(time.Now(), false), admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the members", `document.querySelectorAll('#fleet-members tr[data-state]').length === 3`)
		if got := eval[string](tb, `document.getElementById('fleet-link').textContent`); got != "UNREACHABLE" {
			t.Errorf("the fleet's link reads %q, want UNREACHABLE", got)
		}
		if got := eval[string](tb, `document.getElementById('fleet-link').className`); got != "chip bad" {
			t.Errorf("the fleet's link is drawn as %q, want chip bad", got)
		}
		got := eval[string](tb, `document.getElementById('fleet-down').hidden ? '' : document.getElementById('fleet-down').textContent`)
		if !strings.Contains(got, "a rollback still acts on this Pi") || !strings.Contains(got, "resume and promote are refused") {
			t.Errorf("the note says %q", got)
		}
	})

	t.Run("names from the network are text, not markup", func(t *testing.T) {
		s := admintest.Canary()
		s.Fleet = &admin.Fleet{Name: `<b id="x">12</b>`, Release: `<i>r</i>`, Connected: true, Members: 1}
		ctl := admintest.NewController(s)
		evil := `<img src=x id=injected>`
		ctl.SetMembers(admin.FleetMember{Name: evil, Connected: true, State: state.Canary, Verdict: `<script>`, CanaryVersion: `<u>v</u>`})
		srv := serveAdmin(t, ctl, admin.HandlerOptions{Cause: "api"})
		tb := newTab(t, browser)
		tb.do("loading the page", chromedp.Navigate(srv.url))
		tb.waitFor("the member", `document.querySelectorAll('#fleet-members tr[data-state]').length === 1`)
		if n := eval[int](tb, `document.querySelectorAll('#fleet-card img, #fleet-card i, #fleet-card u, #fleet-card script, #x').length`); n != 0 {
			t.Errorf("%d elements made from the names", n)
		}
		if got := eval[string](tb, `document.querySelector('#fleet-members .name').textContent`); got != evil {
			t.Errorf("the name reads %q, want %q", got, evil)
		}
		if got := eval[string](tb, `document.getElementById('fleet-name').textContent`); got != `<b id="x">12</b>` {
			t.Errorf("the fleet's name reads %q", got)
		}
	})
}

// TestFleetScreenshots renders the Fleet card, reachable and not, on a
// laptop and a phone; the PNGs go to $CANARYPI_SCREENSHOT_DIR when set, to
// look at.
func TestFleetScreenshots(t *testing.T) {
	browser := startBrowser(t)
	dir := screenshotDir(t)
	for _, tc := range []struct {
		name      string
		connected bool
	}{
		{"fleet", true},
		{"fleet-unreachable", false},
	} {
		srv := serveAdmin(t, inFleet(time.Now(), tc.connected), admin.HandlerOptions{Cause: "api"})
		for _, size := range viewports {
			t.Run(tc.name+"/"+size.name, func(t *testing.T) {
				tb := newTab(t, browser)
				tb.do("loading the page",
					chromedp.EmulateViewport(size.width, size.height, size.opts...),
					chromedp.Navigate(srv.url),
				)
				tb.waitFor("the members", `document.querySelectorAll('#fleet-members tr[data-state]').length === 3`)
				if got := eval[int](tb, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); got > 0 {
					t.Errorf("the page scrolls sideways by %dpx", got)
				}
				// On a phone the table's head is there for screen readers only, clipped.
				if got := eval[[]string](tb, `[...document.querySelectorAll('#fleet-card *')].filter(e => !e.closest('thead') && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0).map(e => e.outerHTML.slice(0, 80))`); len(got) > 0 {
					t.Errorf("elements of the Fleet card overflow their box: %q", got)
				}
				tb.screenshot(filepath.Join(dir, "canaryd-"+tc.name+"-"+size.name+".png"), chromedp.Screenshot(`#fleet-card`))
			})
		}
	}
}
