//go:build !race

package analysis

// The fleet's pooled verdict, simulated: several sites serve the same
// canary, each judged on its own counts and all on the sum of them, as
// canaryd in a fleet does. Errors only, Poisson traffic, fixed seeds.

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// site is one member of a simulated fleet.
type site struct {
	rate      float64 // requests a second
	share     float64 // the canary's share
	stableErr float64
	canaryErr float64
}

// fleetPolicy is the defaults with false_alarm split between the local
// and the pooled test, as a member of a fleet judges (release.policy).
var fleetPolicy = Policy{FalseAlarm: 0.01 / 2, Tolerance: 1.25, ErrorRate: 0.05, MinRequests: 20}

// simulateFleet runs one release at sites under p for horizon and returns
// when the pooled test turned bad and when each site's own did (-1: never).
func simulateFleet(sites []site, seed uint64, p Policy, horizon time.Duration) (pooled time.Duration, own []time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 0xf1ee7))
	live := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pool := NewEvidence("v2", live, p)
	locals := make([]Evidence, len(sites))
	own = make([]time.Duration, len(sites))
	for i := range sites {
		locals[i] = NewEvidence("v2", live, p)
		own[i] = -1
	}
	pooled = -1
	ticks := make([]Tick, len(sites))
	for i := 1; time.Duration(i)*tick <= horizon; i++ {
		at := time.Duration(i) * tick
		now := live.Add(at)
		for j, s := range sites {
			lam := s.rate * tick.Seconds()
			c, st := poisson(rng, lam*s.share), poisson(rng, lam*(1-s.share))
			ticks[j] = Tick{Traffic: Tally{Canary: uint64(c), Stable: uint64(st),
				CanaryEvents: draws(rng, c, s.canaryErr), StableEvents: draws(rng, st, s.stableErr)}}
			if locals[j].Observe(now, ticks[j], p) {
				own[j] = at
			}
		}
		if pool.Observe(now, ticks[0], p, ticks[1:]...) {
			pooled = at
		}
		if pooled >= 0 {
			return pooled, own
		}
	}
	return pooled, own
}

// draws is how many of n trials of chance p succeed.
func draws(rng *rand.Rand, n int, p float64) uint64 {
	var k uint64
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// TestThePooledVerdictIsNeverRedOnNoise: three sites whose canary fails as
// often as their stable; the pooled test turns bad in at most its share
// of false_alarm of the releases, plus sampling slack, each judged four
// times a second for a simulated half hour.
func TestThePooledVerdictIsNeverRedOnNoise(t *testing.T) {
	skipShort(t)
	cells := []struct {
		name  string
		sites []site
	}{
		{"3 sites, 20/s, 10%, 1% errors", []site{{20, 0.1, 0.01, 0.01}, {20, 0.1, 0.01, 0.01}, {20, 0.1, 0.01, 0.01}}},
		{"3 sites, 2/20/200 per s, 50/10/1%, 5% errors", []site{{2, 0.5, 0.05, 0.05}, {20, 0.1, 0.05, 0.05}, {200, 0.01, 0.05, 0.05}}},
		{"3 sites, 5/s, 33%, 2% errors", []site{{5, 1.0 / 3, 0.02, 0.02}, {5, 1.0 / 3, 0.02, 0.02}, {5, 1.0 / 3, 0.02, 0.02}}},
	}
	runs := *simRuns
	bad := parallelCount(len(cells), runs, func(cell, run int) bool {
		pooled, _ := simulateFleet(cells[cell].sites, uint64(1000*cell+run), fleetPolicy, 30*time.Minute)
		return pooled >= 0
	})
	for i, c := range cells {
		rate := float64(bad[i]) / float64(runs)
		// Three standard errors above the bound: a bound broken by more
		// is broken, not unlucky.
		limit := fleetPolicy.FalseAlarm + 3*math.Sqrt(fleetPolicy.FalseAlarm*(1-fleetPolicy.FalseAlarm)/float64(runs))
		t.Logf("%-45s pooled false alarms %d of %d (%.2f%%, bound %.2f%%)", c.name, bad[i], runs, 100*rate, 100*fleetPolicy.FalseAlarm)
		if rate > limit {
			t.Errorf("%s: the pooled test turned bad on noise in %.2f%% of releases, above %.2f%%", c.name, 100*rate, 100*limit)
		}
	}
}

// TestTwoSmallSitesFailingAlikeAreFoundSoonerPooled: a canary failing 30%
// of its requests (the stable 1%) at two small sites is judged bad on the
// pooled counts sooner than on either site's own, in the median over
// seeded releases.
func TestTwoSmallSitesFailingAlikeAreFoundSoonerPooled(t *testing.T) {
	skipShort(t)
	sites := []site{{1, 0.1, 0.01, 0.3}, {1, 0.1, 0.01, 0.3}, {1, 0.1, 0.01, 0.01}}
	const runs = 400
	pooledAt, ownAt := make([]time.Duration, runs), make([]time.Duration, runs)
	horizon := 2 * time.Hour
	for r := range runs {
		p, _ := simulateFleet(sites, uint64(r), fleetPolicy, horizon)
		// Alone, each site runs until its own test decides.
		alone, _ := simulateFleet(sites[:1], uint64(r)+1e6, fleetPolicy, horizon)
		pooledAt[r], ownAt[r] = orHorizon(p, horizon), orHorizon(alone, horizon)
	}
	mp, mo := median(pooledAt), median(ownAt)
	t.Logf("a canary failing 30%% at two sites of 1 request/s, 10%% share: median time to bad pooled %s, one site alone %s (%d releases)",
		mp, mo, runs)
	if mp >= mo {
		t.Errorf("pooled: %s, not sooner than one site alone: %s", mp, mo)
	}
}

func orHorizon(d, horizon time.Duration) time.Duration {
	if d < 0 {
		return horizon
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
