package fleet

// How the fleet scales, measured (go test -run TestScale ./appliance/fleet
// -args -fleet.scale): members as goroutines, each a whole Member on a
// connection of its own to one nats-server on loopback, speaking the
// protocol canaryd speaks; presses from random members, and the time until
// every member has rolled back.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

var scale = flag.Bool("fleet.scale", false, "measure rollback propagation and nats-server's CPU with 3, 30 and 100 members")

func TestScale(t *testing.T) {
	if !*scale {
		t.Skip("a measurement: -args -fleet.scale")
	}
	var rows []string
	for _, n := range []int{3, 30, 100} {
		rows = append(rows, scaleRow(t, n))
	}
	t.Log("\n| members | press to all rolled back, p50 | p99 | nats-server CPU, idle fleet (reports only) |\n| --- | --- | --- | --- |\n" +
		strings.Join(rows, "\n"))
}

func scaleRow(t *testing.T, n int) string {
	url := testkit.NATSServer(t)
	server := natsPID(t, url)
	members := make([]*Member, n)
	locals := make([]*fakeLocal, n)
	for i := range n {
		about := func() admin.FleetMember {
			return admin.FleetMember{State: state.Canary, CanaryVersion: "v2", Verdict: "good", CanaryPercent: 10}
		}
		members[i], locals[i] = runMemberAbout(t, url, fmt.Sprintf("m%03d", i), state.Latch{}, about)
	}
	// Counts flow as in a release: each member's verdict ticks four times
	// a second.
	stop := make(chan struct{})
	defer close(stop)
	for _, m := range members {
		go func() {
			tk := time.NewTicker(250 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					m.Exchange("v2", analysis.Tick{Traffic: analysis.Tally{Canary: 5, Stable: 45}})
				}
			}
		}()
	}
	testkit.Eventually(t, 30*time.Second, "every member hears every other", func() bool { return members[0].Live() == n })
	cpu0, at0 := cpuSeconds(t, server), time.Now()
	time.Sleep(10 * time.Second)
	cpu := (cpuSeconds(t, server) - cpu0) / time.Since(at0).Seconds()

	var took []time.Duration
	for range 20 {
		from := locals[rand.IntN(n)]
		start := time.Now()
		if err := from.Rollback(state.CauseButton); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "every member rolled back", func() bool {
			for _, l := range locals {
				if !l.RolledBack() {
					return false
				}
			}
			return true
		})
		took = append(took, time.Since(start))
		if err := members[rand.IntN(n)].Resume(ctx(t), state.CauseCommand); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "every member resumed", func() bool {
			for _, l := range locals {
				if l.RolledBack() {
					return false
				}
			}
			return true
		})
	}
	slices.Sort(took)
	return fmt.Sprintf("| %d | %s | %s | %.1f%% of a core |", n, took[len(took)/2].Round(time.Millisecond),
		took[len(took)*99/100].Round(time.Millisecond), 100*cpu)
}

// natsPID is the pid of the nats-server listening at url.
func natsPID(t *testing.T, url string) int {
	port := url[strings.LastIndexByte(url, ':')+1:]
	out, err := exec.Command("pgrep", "-f", "nats-server -a 127.0.0.1 -p "+port+" ").Output()
	if err != nil {
		t.Fatalf("the nats-server on %s: %v", url, err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// cpuSeconds is the user and system CPU time pid has used.
func cpuSeconds(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
