package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/gpio/panel"
)

// Each action that changed the split leaves a mark with the canary's share
// after it; an action refused or changing nothing leaves none.
func TestActionsAndNewVersionsMarkTheHistory(t *testing.T) {
	var confDir string
	d := startedWith(t, panel.Absent{}, func(dir string) { confDir = dir })
	ctx := context.Background()
	if err := d.Rollback(ctx, "command"); err != nil {
		t.Fatal(err)
	}
	_ = d.Rollback(ctx, "command") // already rolled back: nothing changes
	if err := d.Promote(ctx, "api"); err == nil {
		t.Fatal("promote while rolled back was accepted")
	}
	if err := d.Resume(ctx, "button"); err != nil {
		t.Fatal(err)
	}
	if err := d.Promote(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(confDir, "canaryd.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), `version = "v2"`, `version = "v3"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}

	type mark struct {
		kind    history.Kind
		percent float64
		text    string
	}
	var got []mark
	for _, m := range d.History().Marks {
		got = append(got, mark{m.Kind, m.Percent, m.Text})
	}
	want := []mark{
		{history.Rollback, 0, "rollback of v2 by canaryctl"},
		{history.Resume, 33.3, "resume of v2 by the button"},
		{history.Promote, 100, "promote of v2 by the admin API"},
		{history.Version, 33.3, "canary v2 replaced by v3"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("marks\n%+v\nwant\n%+v", got, want)
	}
}

func TestTotalsSumEachRolesCounters(t *testing.T) {
	d := started(t, panel.Absent{})
	plan := d.router.Plan()
	for _, u := range plan.Upstreams {
		n := uint64(100)
		if u.Role == config.Canary {
			n = 7
		}
		u.Stats.Classes[route.Class2xx].Add(n - n/7)
		u.Stats.Classes[route.Class5xx].Add(n / 7)
	}
	canary, stable := totals(plan, time.Now())
	if canary.Requests != 7 || canary.Errors != 1 || stable.Requests != 100 || stable.Errors != 14 {
		t.Errorf("canary %+v, stable %+v; want 7 requests 1 error, 100 requests 14 errors", canary, stable)
	}
}
