//go:build !race

// The Monte Carlo simulation of the verdict: pure, on a simulated clock,
// with fixed seeds. It is left out of the race detector's run, which would
// make its seconds minutes; make test-verdict runs it.

package analysis

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tick is the verdict's period, as the daemon judges.
const tick = 250 * time.Millisecond

// simConfig is one simulated release: Poisson traffic split between the
// versions at share, each request failing and taking its time independently.
type simConfig struct {
	rate      float64 // requests a second
	share     float64 // the canary's share, 0 to 1
	stableErr float64 // 5xx rate of each version
	canaryErr float64
	sigma     float64 // spread of the lognormal latency (median 20 ms)
	slower    float64 // the canary's latency as a multiple of the stable's; 0 is 1
	// refused is the rate of refused connections on each version; a
	// refused canary attempt takes the canary out of the rotation for
	// failTimeout (max_fails = 1) and is retried on the stable, and
	// while it is out canaryd probes it. dead refuses every canary attempt.
	refused float64
	dead    bool
	// change is when the canary's error rate becomes canaryErr: before
	// it, the canary fails as the stable does.
	change  time.Duration
	horizon time.Duration
	// canaryRequests ends the release once the canary has had this many
	// requests, when it is not 0.
	canaryRequests uint64
}

const (
	simMedian      = 20 * time.Millisecond
	simFailTimeout = 10 * time.Second
)

// simPolicy is the policy the simulation judges by: the defaults.
var simPolicy = Policy{FalseAlarm: 0.01, Tolerance: 1.25, ErrorRate: 0.05, MinRequests: 20,
	LatencyRatio: 1.5, LatencyFloor: time.Millisecond}

// simResult is when the verdict turned bad, and the oracle's; -1 for never
// within the horizon.
type simResult struct {
	bad, oracle time.Duration
	test        string // "errors" or "latency"
}

// oracle is the sequential probability ratio test that knows the true
// ratio: its log-likelihood ratio against the tolerance, per test.
type oracle struct{ errors, latency float64 }

// oracleLLR is the log-likelihood ratio of one tally for an oracle that
// knows theta, the true chance that an event is the canary's.
func oracleLLR(t Tally, theta, r0 float64) float64 {
	e := float64(t.CanaryEvents + t.StableEvents)
	if e == 0 {
		return 0
	}
	rho := t.share()
	theta0 := rho * r0 / (rho*r0 + 1 - rho)
	l := 0.0
	if t.CanaryEvents > 0 {
		l += float64(t.CanaryEvents) * math.Log(theta/theta0)
	}
	if t.StableEvents > 0 {
		l += float64(t.StableEvents) * math.Log((1-theta)/(1-theta0))
	}
	return l
}

// thetaOf is the chance that an event is the canary's when the canary has
// share rho of the attempts and its event rate is ratio times the stable's.
func thetaOf(rho, ratio float64) float64 {
	if math.IsInf(ratio, 1) {
		return 1
	}
	return rho * ratio / (rho*ratio + 1 - rho)
}

// normalSF is the standard normal's survival function.
func normalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// simulate runs one release of c with seed under policy p until the
// verdict turns bad (and, with oracle, the oracle's test too) or the
// horizon passes.
func simulate(c simConfig, seed uint64, p Policy, withOracle bool) simResult {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	live := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ev := NewEvidence("v2", live, p)
	res := simResult{bad: -1, oracle: -1}
	var or oracle
	slower := c.slower
	if slower == 0 {
		slower = 1
	}
	base := slower
	if c.change > 0 {
		base = 1
	}
	mu := math.Log(simMedian.Seconds())
	// The stable's answers over the last window (120 ticks), for the
	// order statistic its p90 is estimated from.
	var ring [120]uint64
	var inWindow uint64
	var outUntil time.Duration // the canary is out of the rotation before this
	th := Thresholds{Stable: Never, Canary: Never}
	var ps, pc float64 // the chance that a stable, a canary answer is slow
	slowP := func(limit time.Duration, scale float64) float64 {
		if limit == Never {
			return 0
		}
		return normalSF((math.Log(limit.Seconds()) - mu - math.Log(scale)) / c.sigma)
	}
	lam := c.rate * tick.Seconds()
	for i := 1; time.Duration(i)*tick <= c.horizon; i++ {
		at := time.Duration(i) * tick
		canaryErr := c.canaryErr
		if at <= c.change {
			canaryErr = c.stableErr
		}
		if at == c.change+tick && slower != 1 {
			// The canary slows down: what is slow for it is as it was.
			pc = slowP(th.Canary, slower)
		}
		// What counts as slow, from the stable's window: its buckets are
		// a second wide, so its p90 moves once a second.
		if i%4 == 1 {
			th = Thresholds{Stable: Never, Canary: Never}
			if p.LatencyOn() && inWindow >= LatencySamples {
				u := StableQuantile + math.Sqrt(StableQuantile*(1-StableQuantile)/float64(inWindow))*rng.NormFloat64()
				u = min(max(u, 0.5), 0.9999)
				q := windowBound(windowBucket(time.Duration(math.Exp(mu+c.sigma*phiInv(u)) * float64(time.Second))))
				th = Thresholds{Stable: q, Canary: max(time.Duration(p.LatencyRatio*float64(q)), q+p.LatencyFloor)}
			}
			scale := base
			if at > c.change {
				scale = slower
			}
			ps, pc = slowP(th.Stable, 1), slowP(th.Canary, scale)
		}
		// The traffic: each version's arrivals, thinned into errors,
		// refusals, slow and fast answers.
		held := at <= outUntil
		canaryLam := lam * c.share
		if held {
			canaryLam = 0
		}
		stableLam := lam - canaryLam
		var traffic, slow, probes Tally
		// The canary's arrivals, one at a time until a refusal takes it out.
		refusedC := c.refused
		if c.dead {
			refusedC = 1
		}
		// A stable attempt, one at a time.
		stableOne := func() {
			traffic.Stable++
			if rng.Float64() < c.stableErr+c.refused {
				traffic.StableEvents++
				return
			}
			slow.Stable++
			if rng.Float64() < ps {
				slow.StableEvents++
			}
		}
		if refusedC == 0 {
			// No refusals: thinned as the stable's.
			errC := poisson(rng, canaryLam*canaryErr)
			slowC := poisson(rng, canaryLam*(1-canaryErr)*pc)
			fastC := poisson(rng, canaryLam*(1-canaryErr)*(1-pc))
			traffic.Canary += uint64(errC + slowC + fastC)
			traffic.CanaryEvents += uint64(errC)
			slow.Canary += uint64(slowC + fastC)
			slow.CanaryEvents += uint64(slowC)
			canaryLam = 0
		}
		nc := poisson(rng, canaryLam)
		for j := 0; j < nc; j++ {
			if rng.Float64() < refusedC {
				traffic.Canary++
				traffic.CanaryEvents++
				outUntil = at + simFailTimeout
				// Its request is retried on the stable; the rest of the
				// tick's canary arrivals go there too.
				for range nc - j {
					stableOne()
				}
				break
			}
			traffic.Canary++
			if rng.Float64() < canaryErr {
				traffic.CanaryEvents++
				continue
			}
			slow.Canary++
			if rng.Float64() < pc {
				slow.CanaryEvents++
			}
		}
		// The stable's arrivals, thinned into errors, slow and fast answers.
		errS := poisson(rng, stableLam*(c.stableErr+c.refused))
		slowS := poisson(rng, stableLam*(1-c.stableErr-c.refused)*ps)
		fastS := poisson(rng, stableLam*(1-c.stableErr-c.refused)*(1-ps))
		traffic.Stable += uint64(errS + slowS + fastS)
		traffic.StableEvents += uint64(errS)
		slow.Stable += uint64(slowS + fastS)
		slow.StableEvents += uint64(slowS)
		// Probes of a canary out of the rotation: one a second, beside two
		// of the stable.
		if held {
			probes = Tally{Canary: 1, Stable: 3}
			if rng.Float64() < refusedC {
				probes.CanaryEvents = 1
			}
			for range 3 {
				if rng.Float64() < c.refused {
					probes.StableEvents++
				}
			}
		}
		inWindow += slow.Stable - ring[i%len(ring)]
		ring[i%len(ring)] = slow.Stable

		if ev.Observe(live.Add(at), Tick{Traffic: traffic, Probes: probes, Slow: slow}, p) {
			res.bad, res.test = at, ev.BadTest
		}
		if withOracle && res.oracle < 0 && at > c.change {
			trueErr := math.Inf(1)
			if c.stableErr+c.refused > 0 {
				trueErr = min(canaryErr+refusedC, 1) / (c.stableErr + c.refused)
			}
			probeRatio := math.Inf(1)
			if c.refused > 0 {
				probeRatio = refusedC / c.refused
			}
			// Each oracle test knows the true ratio, and tests only in the
			// direction of a regression, as the verdict does.
			if trueErr > p.Tolerance {
				or.errors += oracleLLR(traffic, thetaOf(traffic.share(), trueErr), p.Tolerance) +
					oracleLLR(probes, thetaOf(probes.share(), probeRatio), p.Tolerance)
			}
			if ps > 0 && pc > ps {
				or.latency += oracleLLR(slow, thetaOf(slow.share(), pc/ps), 1)
			}
			if or.errors >= math.Log(p.ErrorsThreshold()) || or.latency >= math.Log(p.LatencyThreshold()) {
				res.oracle = at
			}
		}
		if res.bad >= 0 && (!withOracle || res.oracle >= 0) {
			break
		}
		if c.canaryRequests > 0 && ev.Traffic.Canary >= c.canaryRequests {
			break
		}
	}
	return res
}

// phiInv is the standard normal's quantile function.
func phiInv(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// poisson draws from a Poisson distribution of mean lam: by counting
// exponential gaps for a small mean, by Hörmann's transformed rejection (PTRS) for
// a large one.
func poisson(rng *rand.Rand, lam float64) int {
	if lam <= 0 {
		return 0
	}
	if lam < 10 {
		// Arrivals of a unit-rate process before lam.
		k := 0
		for t := rng.ExpFloat64(); t < lam; t += rng.ExpFloat64() {
			k++
		}
		return k
	}
	slam := math.Sqrt(lam)
	loglam := math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-lg {
			return int(k)
		}
	}
}

// simCell is a false-alarm cell: a rate and a share, over which the runs
// cycle through error rates and latency spreads, and what else its canary
// and stable share.
type simCell struct {
	rate, share float64
	what        string
	set         func(c *simConfig)
}

// TestNeverRedOnNoise: a canary as good as the stable (same error rate,
// same latency distribution) is judged bad in at most false_alarm of its
// releases, plus sampling slack, each release judged four times a second
// for a simulated hour. Beside the plain cells: both versions refusing
// connections alike, where max_fails takes a canary that fails out of the
// rotation and its probes begin; and a canary failing exactly as much more
// than the stable as the tolerance allows.
func TestNeverRedOnNoise(t *testing.T) {
	skipShort(t)
	runs := *simRuns
	errRates := []float64{0, 0.005, 0.01, 0.02, 0.05}
	spreads := []float64{0.5, 1, 1.5}
	var cells []simCell
	for _, rate := range []float64{2, 20, 200} {
		for _, share := range []float64{0.01, 0.05, 0.33, 0.5} {
			cells = append(cells, simCell{rate, share, "equal", nil})
		}
	}
	for _, rate := range []float64{20, 200} {
		cells = append(cells, simCell{rate, 0.33, "both refuse 0.5% of connections, max_fails 1",
			func(c *simConfig) { c.refused = 0.005 }})
	}
	cells = append(cells, simCell{20, 0.33, "canary fails 1.25x the stable (the tolerance)",
		func(c *simConfig) { c.canaryErr = min(simPolicy.Tolerance*c.stableErr, 1) }})
	bad := parallelCount(len(cells), runs, func(cell, run int) bool {
		c := simConfig{rate: cells[cell].rate, share: cells[cell].share,
			stableErr: errRates[run%len(errRates)], sigma: spreads[run/len(errRates)%len(spreads)], horizon: time.Hour}
		c.canaryErr = c.stableErr
		if cells[cell].set != nil {
			cells[cell].set(&c)
		}
		return simulate(c, uint64(cell*100000+run), simPolicy, false).bad >= 0
	})
	limit := simPolicy.FalseAlarm + 3.1*math.Sqrt(simPolicy.FalseAlarm*(1-simPolicy.FalseAlarm)/float64(runs))
	total := 0
	for i, c := range cells {
		share := float64(bad[i]) / float64(runs)
		t.Logf("%3g req/s, canary share %2g%%, %s: %d of %d releases ever bad (%.2f%%)", c.rate, 100*c.share, c.what, bad[i], runs, 100*share)
		if share > limit {
			t.Errorf("%g req/s at a %g%% share, %s: %.2f%% of releases judged bad, want at most %.2f%% (false_alarm %g plus sampling slack)",
				c.rate, 100*c.share, c.what, 100*share, 100*limit, simPolicy.FalseAlarm)
		}
		total += bad[i]
	}
	if n := len(cells) * runs; float64(total) > float64(n)*simPolicy.FalseAlarm {
		t.Errorf("over all %d releases: %d bad, want at most %g%%", n, total, 100*simPolicy.FalseAlarm)
	}
}

// skipShort skips a simulation under -short: the ARM runs under qemu,
// where its minutes would test the emulator.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the verdict's simulation (make test-verdict) is skipped with -short")
	}
}

var simRuns = flag.Int("verdict.runs", 1000, "releases simulated per cell")

// parallelCount runs f for every run of every cell on all CPUs and counts,
// per cell, the runs it returned true for.
func parallelCount(cells, runs int, f func(cell, run int) bool) []int {
	counts := make([]atomic.Int64, cells)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cells*runs {
					return
				}
				if f(i/runs, i%runs) {
					counts[i/runs].Add(1)
				}
			}
		})
	}
	wg.Wait()
	out := make([]int, cells)
	for i := range counts {
		out[i] = int(counts[i].Load())
	}
	return out
}

// regression is one row kind of the detection table.
type regression struct {
	name string
	set  func(*simConfig)
}

var regressions = []regression{
	{"errors 2x", func(c *simConfig) { c.canaryErr = 2 * c.stableErr }},
	{"errors 3x", func(c *simConfig) { c.canaryErr = 3 * c.stableErr }},
	{"errors 10x", func(c *simConfig) { c.canaryErr = 10 * c.stableErr }},
	{"errors 50x", func(c *simConfig) { c.canaryErr = 50 * c.stableErr }},
	{"latency 2x", func(c *simConfig) { c.slower = 2 }},
	{"latency 4x", func(c *simConfig) { c.slower = 4 }},
	{"dead canary", func(c *simConfig) { c.dead = true }},
}

// lateRegressions begin well into a release: the time to bad is counted
// from their start, and the oracle knows when that was.
var lateRegressions = []regression{
	{"errors 10x from 10 min in", func(c *simConfig) { c.canaryErr, c.change = 10*c.stableErr, 10*time.Minute }},
	{"errors 10x from 1 h in", func(c *simConfig) { c.canaryErr, c.change = 10*c.stableErr, time.Hour }},
	{"latency 4x from 1 h in", func(c *simConfig) { c.slower, c.change = 4, time.Hour }},
}

var (
	tableRuns = flag.Int("verdict.table-runs", 200, "releases simulated per row of the detection table")
	tableFile = flag.String("verdict.table", "", "write the detection table, as markdown, to this file")
)

// TestDetectionTimes measures the time to a bad verdict for real
// regressions, from the canary's first request, beside the oracle
// sequential probability ratio test that knows the true ratio: the fastest
// a test of that alternative can be at the same false-alarm rate. The stable
// fails 1% of its requests; latencies are lognormal with a spread of 1.
func TestDetectionTimes(t *testing.T) {
	skipShort(t)
	const horizon = 2 * time.Hour
	type row struct {
		rate, share float64
		reg         regression
		late        bool
	}
	var rows []row
	for _, rate := range []float64{2, 20, 200} {
		for _, share := range []float64{0.01, 0.05, 0.33, 0.5} {
			for _, reg := range regressions {
				rows = append(rows, row{rate, share, reg, false})
			}
		}
	}
	for _, reg := range lateRegressions {
		rows = append(rows, row{20, 0.33, reg, true})
	}
	runs := *tableRuns
	ours := make([][]time.Duration, len(rows))
	orac := make([][]time.Duration, len(rows))
	for i := range rows {
		ours[i] = make([]time.Duration, runs)
		orac[i] = make([]time.Duration, runs)
	}
	parallelCount(len(rows), runs, func(i, run int) bool {
		c := simConfig{rate: rows[i].rate, share: rows[i].share, stableErr: 0.01, sigma: 1}
		c.canaryErr = c.stableErr
		rows[i].reg.set(&c)
		c.horizon = c.change + horizon
		r := simulate(c, uint64(7_000_000+i*10000+run), simPolicy, true)
		ours[i][run], orac[i][run] = never(r.bad-c.change), never(r.oracle-c.change)
		return false
	})
	var b strings.Builder
	fmt.Fprintf(&b, "| req/s | canary share | regression | time to bad: median (p90) | oracle: median (p90) | ratio of medians |\n")
	fmt.Fprintf(&b, "| ---: | ---: | --- | ---: | ---: | ---: |\n")
	var worst float64
	for i, r := range rows {
		m, p90 := quantiles(ours[i])
		om, op90 := quantiles(orac[i])
		ratio := "–"
		if m < never(-1) && om < never(-1) {
			x := m.Seconds() / om.Seconds()
			ratio = strconv.FormatFloat(x, 'f', 2, 64)
			// The goal, for regressions from the start: within 1.5x of the
			// oracle's median, where that median spans a few ticks at
			// least (below, a tick more is a ratio of 1.5 by itself).
			if !r.late && om >= 2*time.Second {
				worst = max(worst, x)
				if x > 1.5 {
					t.Errorf("%g req/s at a %g%% share, %s: median %v against the oracle's %v, %.2fx; want within 1.5x",
						r.rate, 100*r.share, r.reg.name, m, om, x)
				}
			}
		}
		fmt.Fprintf(&b, "| %g | %g%% | %s | %s (%s) | %s (%s) | %s |\n", r.rate, 100*r.share, r.reg.name,
			span(m), span(p90), span(om), span(op90), ratio)
	}
	t.Log("\n" + b.String())
	if *tableFile != "" {
		doc := fmt.Sprintf(tableHeader, time.Now().Format("2006-01-02"), runtime.NumCPU(), runtime.GOARCH, runs) + b.String()
		if err := os.WriteFile(*tableFile, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the largest ratio of medians, from the start and over two seconds: %.2f", worst)
}

// tableHeader heads the table's file: the date, the CPUs and architecture
// of the machine, and the releases a row.
const tableHeader = `# The verdict's detection times

Written by make verdict-table on %s, on a %d-core %s machine (the times are
simulated: they hold on a Pi). Each row is %d simulated releases judged four times
a second on Poisson traffic, the stable failing 1%% of its requests, latencies
lognormal with a spread of 1, all [canary] keys at their defaults. "Oracle" is the
sequential probability ratio test that knows the true ratio, at the same threshold:
the fastest any test of that alternative can be. The last three rows begin an hour
(or ten minutes) into the release and are timed from then; their oracle knows when.
"> 2 h": not within two hours in half the releases.

`

// never is d, or a duration longer than any horizon for -1.
func never(d time.Duration) time.Duration {
	if d < 0 {
		return 1 << 62
	}
	return d
}

// quantiles are the median and the 90th percentile of ds.
func quantiles(ds []time.Duration) (median, p90 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*9/10]
}

// span formats a time to bad for the table: "4.5 s", "12 min", "> 2 h".
func span(d time.Duration) string {
	switch {
	case d >= never(-1):
		return "> 2 h"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return strconv.FormatFloat(d.Minutes(), 'f', 1, 64) + " min"
	}
	return strconv.FormatFloat(d.Hours(), 'f', 1, 64) + " h"
}

// TestASafeStepHadThePowerToSeeARegression: a rollout step advances once
// the canary had the requests SafetyFor asks for; a canary failing at the
// rate it rules out is then found by that many requests in at least
// SafetyPower of releases (less a little for sampling).
func TestASafeStepHadThePowerToSeeARegression(t *testing.T) {
	skipShort(t)
	type cell struct{ rate, share, stableErr float64 }
	cells := []cell{{20, 0.05, 0.004}, {20, 0.1, 0.004}, {20, 0.33, 0.004}, {20, 0.1, 0.02}, {20, 0.33, 0.05}, {20, 0.1, 0},
		{2, 0.33, 0.004}, {200, 0.05, 0.004}, {200, 0.33, 0.004}, {200, 0.5, 0.02}, {200, 0.1, 0}}
	const runs = 300
	var needed []Safety
	for _, c := range cells {
		needed = append(needed, SafetyFor(simPolicy, c.share, uint64(c.stableErr*100000), 100000, c.rate))
	}
	found := parallelCount(len(cells), runs, func(i, run int) bool {
		c := simConfig{rate: cells[i].rate, share: cells[i].share, stableErr: cells[i].stableErr, canaryErr: needed[i].RuleOut,
			sigma: 1, horizon: 24 * time.Hour, canaryRequests: needed[i].Needed}
		return simulate(c, uint64(9_000_000+i*1000+run), simPolicy, false).bad >= 0
	})
	for i, c := range cells {
		share := float64(found[i]) / runs
		t.Logf("%g req/s, share %g%%, stable failing %g%%: %d canary requests to rule out %s; found in %.0f%% of releases",
			c.rate, 100*c.share, 100*c.stableErr, needed[i].Needed, needed[i], 100*share)
		if share < SafetyPower-0.05 {
			t.Errorf("%g req/s, share %g%%, stable %g%%: a canary failing at %g%% found within %d requests in %.0f%% of releases, want %.0f%%",
				c.rate, 100*c.share, 100*c.stableErr, 100*needed[i].RuleOut, needed[i].Needed, 100*share, 100*SafetyPower)
		}
	}
}
