package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/panel"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// inFleet appends a [fleet] section joining url's release "shop" as name.
func inFleet(url, name string) func(dir string) {
	return func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, "canaryd.toml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		fmt.Fprintf(f, "[fleet]\nservers = [%q]\nname = %q\nrelease = \"shop\"\n", url, name)
	}
}

func TestAButtonOnOneMemberRollsBackTheFleetAndALongPressResumesIt(t *testing.T) {
	url := testkit.NATSServer(t)
	hand := &handPanel{presses: make(chan panel.Press, 1)}
	a := startedWith(t, hand, inFleet(url, "a"))
	b := startedWith(t, panel.Absent{}, inFleet(url, "b"))
	testkit.Eventually(t, 10*time.Second, "both members connected", func() bool {
		return a.Status().Fleet.Connected && b.Status().Fleet.Connected
	})
	testkit.Eventually(t, 5*time.Second, "a lists both members, live", func() bool {
		m := a.Members()
		return a.Status().Fleet.Members == 2 && len(m) == 2 && m[1].Name == "b" && m[1].Connected && m[1].State == state.Canary
	})
	hand.presses <- panel.Press{Via: panel.ViaEdge}
	testkit.Eventually(t, 2*time.Second, "b rolled back by a's button", func() bool {
		st := b.Status()
		return st.State == state.RolledBack && st.Latch != nil && st.Latch.Cause == state.CauseFleet
	})
	if st := a.Status(); st.State != state.RolledBack || st.Latch.Cause != state.CauseButton {
		t.Fatalf("a after its own button: %s by %v", st.State, st.Latch)
	}
	// Each wrote the report of what its own canary served; either lists both.
	testkit.Eventually(t, 15*time.Second, "b lists both members' incident reports", func() bool {
		list, err := b.FleetIncidents(context.Background())
		members := map[string]state.Cause{}
		for _, in := range list {
			members[in.Member] = in.Cause
		}
		return err == nil && len(list) == 2 && members["a"] == state.CauseButton && members["b"] == state.CauseFleet
	})
	hand.presses <- panel.Press{Long: true, Via: panel.ViaEdge}
	for _, d := range []*Daemon{a, b} {
		testkit.Eventually(t, 2*time.Second, "the long press resumed every member", func() bool {
			return d.Status().State == state.Canary
		})
	}
}

func TestWithoutAFleetSectionNothingOfTheFleetRuns(t *testing.T) {
	d := started(t, panel.Absent{})
	if d.fleet != nil || d.Status().Fleet != nil || d.Members() != nil {
		t.Errorf("a config without [fleet] has a fleet member: %+v", d.Status().Fleet)
	}
}
