package release

import (
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// twoFailingSites is a fleet pool where two other members serve the
// canary, each failing a third of its requests.
type twoFailingSites struct{ version string }

func (p *twoFailingSites) Exchange(version string, _ analysis.Tick) ([]analysis.Tick, int) {
	p.version = version
	failing := analysis.Tick{Traffic: analysis.Tally{Canary: 3, CanaryEvents: 1, Stable: 27}}
	return []analysis.Tick{failing, failing}, 3
}

func (p *twoFailingSites) Connected() bool { return true }

func TestTheFleetsPooledCountsTurnTheVerdictBadWhereThisMembersOwnHaveNone(t *testing.T) {
	pool := &twoFailingSites{}
	r := newRigIn(t, &memStore{}, &memReports{}, pool)
	now := time.Now()
	for i := range 40 {
		r.Tick(now.Add(time.Duration(i) * judgeEvery))
	}
	r.Wait()
	st := r.Status(now)
	if pool.version != "v2" {
		t.Errorf("the pool was asked for version %q, want v2", pool.version)
	}
	if st.Verdict.State != analysis.Bad || !strings.HasPrefix(st.Verdict.Reason, "on the fleet's counts (3 members): ") || r.lights.canary != led.Red {
		t.Fatalf("verdict %s (%q), light %s; want bad on the fleet's counts, red", st.Verdict.State, st.Verdict.Reason, r.lights.canary)
	}
	if !r.evidence.BadAt.IsZero() {
		t.Errorf("this member's own evidence turned bad without a request of its own")
	}
}

func TestAMemberOfAFleetSplitsFalseAlarmBetweenItsOwnTestAndThePooledOne(t *testing.T) {
	alone := newRig(t, &memStore{}, &memReports{})
	member := newRigIn(t, &memStore{}, &memReports{}, &twoFailingSites{})
	if a, m := alone.policy().FalseAlarm, member.policy().FalseAlarm; m != a/2 {
		t.Errorf("false_alarm alone %g, in a fleet %g per test; want half", a, m)
	}
}
