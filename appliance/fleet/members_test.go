package fleet

import (
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

func serving(version, verdict string) func() admin.FleetMember {
	return func() admin.FleetMember {
		return admin.FleetMember{State: state.Canary, CanaryVersion: version, Verdict: verdict, CanaryPercent: 10}
	}
}

func TestEveryMemberListsTheOthersAsTheyReportThemselves(t *testing.T) {
	url := testkit.NATSServer(t)
	a, _ := runMemberAbout(t, url, "a", state.Latch{}, serving("v2", "good"))
	runMemberAbout(t, url, "b", state.Latch{}, serving("v2", "bad"))
	testkit.Eventually(t, 5*time.Second, "a hears b", func() bool { return a.Live() == 2 })
	list := a.Members()
	if len(list) != 2 || list[0].Name != "a" || !list[0].Self || list[1].Name != "b" || list[1].Self {
		t.Fatalf("a's members: %+v, want a (itself) and b", list)
	}
	b := list[1]
	if !b.Connected || b.State != state.Canary || b.Verdict != "bad" || b.CanaryVersion != "v2" || b.LastSeen == "" {
		t.Errorf("b as a lists it: %+v", b)
	}
}

func TestTheOthersCountsOfTheSameCanaryComeBackForThePooledVerdict(t *testing.T) {
	url := testkit.NATSServer(t)
	a, _ := runMemberAbout(t, url, "a", state.Latch{}, serving("v2", "good"))
	b, _ := runMemberAbout(t, url, "b", state.Latch{}, serving("v2", "good"))
	c, _ := runMemberAbout(t, url, "c", state.Latch{}, serving("v3", "good"))
	testkit.Eventually(t, 5*time.Second, "a hears b and c", func() bool { return a.Live() == 3 })
	failing := analysis.Tick{Traffic: analysis.Tally{Canary: 10, CanaryEvents: 3, Stable: 90}}
	var pooled analysis.Tally
	members := 0
	testkit.Eventually(t, 5*time.Second, "b's counts pooled at a", func() bool {
		b.Exchange("v2", failing)
		c.Exchange("v3", failing)
		others, n := a.Exchange("v2", analysis.Tick{})
		for _, o := range others {
			pooled = pooled.Add(o.Traffic)
		}
		members = n
		return pooled.Canary >= 30
	})
	if members != 2 {
		t.Errorf("a pools %d members, want 2 (itself and b; c serves another canary)", members)
	}
	if pooled.Canary%10 != 0 || pooled.CanaryEvents*10 != pooled.Canary*3 || pooled.Stable != 9*pooled.Canary {
		t.Errorf("a pooled %+v: only whole ticks of b's, none of c's", pooled)
	}
}
