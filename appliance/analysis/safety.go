package analysis

import (
	"fmt"
	"math"
)

// SafetyPower is the chance with which a rollout step must have been able
// to find a regression before it advances.
const SafetyPower = 0.9

// Safety is what a rollout step needs before silence counts as evidence of
// safety: enough canary requests that the errors test would have found a
// canary failing at RuleOut with probability SafetyPower.
type Safety struct {
	// RuleOut is the canary error rate to rule out: twice the tolerated
	// ratio times the stable's rate, and at least canary.error_rate.
	RuleOut float64
	// StableRate is the stable's error rate it was derived from.
	StableRate float64
	// Needed is how many canary requests that takes at the step's share;
	// 0 when the canary gets no share (nothing can be learned then).
	Needed uint64
}

// String says what it rules out, for a rollout's holding line: "a 5.0%
// error rate (the stable's is 0.4%)".
func (s Safety) String() string {
	return fmt.Sprintf("a %s error rate (the stable's is %s)", pct(s.RuleOut), pct(s.StableRate))
}

// SafetyFor is what a step needs when the canary gets share (0 to 1) of
// perSecond requests a second and the stable failed stableErrors of
// stableRequests so far.
//
// It is a normal approximation of the errors test's own power, tick by
// tick as the test counts: with Poisson arrivals, a tick's attempts and
// errors on each side are random, and so is the canary's share within it
// (a tick with a canary error has a canary attempt, and so a larger share
// than on average, which makes its error less telling). The mean and
// variance of a tick's log-likelihood ratio, for each alternative started
// with the release, give the ticks it takes to pass the threshold with
// probability SafetyPower; the fewest, in canary requests, is Needed.
// Traffic balanced by the round-robin varies less than Poisson's, so the
// estimate errs on the side of more requests.
func SafetyFor(p Policy, share float64, stableErrors, stableRequests uint64, perSecond float64) Safety {
	ps := 0.0
	if stableRequests > 0 {
		ps = float64(stableErrors) / float64(stableRequests)
	}
	r0 := max(p.Tolerance, 1)
	s := Safety{StableRate: ps, RuleOut: min(max(2*r0*ps, p.ErrorRate), 1)}
	if !(share > 0 && share < 1) || s.RuleOut <= 0 {
		return s
	}
	perTick := max(perSecond, 1) * tickSeconds
	lc, ls := perTick*share, perTick*(1-share)
	z := math.Sqrt2 * math.Erfinv(2*SafetyPower-1)
	// The release-start component of alternative k weighs startMass/nAlt.
	c := math.Log(p.ErrorsThreshold()) + math.Log(float64(nAlt)/startMass)
	ticks := math.Inf(1)
	for k := range alternatives {
		mean, variance := tickMoments(k, r0, s.RuleOut, ps, lc, ls)
		if mean <= 0 {
			continue
		}
		sigma := math.Sqrt(variance)
		x := (z*sigma + math.Sqrt(z*z*sigma*sigma+4*mean*c)) / (2 * mean)
		ticks = min(ticks, x*x)
	}
	if math.IsInf(ticks, 1) {
		return s
	}
	s.Needed = uint64(math.Ceil(ticks * lc))
	return s
}

// tickMoments are the mean and variance of one tick's log-likelihood ratio
// for alternative k when the canary fails at pc and the stable at ps, with
// Poisson attempts of means lc and ls. With few attempts a tick the share
// within it varies much, and the sum runs over every likely pair of
// counts; with many, the share is near its mean, and the counts' errors
// are Poisson with it.
func tickMoments(k int, r0, pc, ps, lc, ls float64) (mean, variance float64) {
	m := alternatives[k]
	r := r0 * m
	a := math.Log(m)
	b := func(rho float64) float64 { return math.Log1p(rho*(r-1)) - math.Log1p(rho*(r0-1)) }
	if lc >= exactBelow && ls >= exactBelow {
		bb := b(lc / (lc + ls))
		ec, es := lc*pc, ls*ps
		return ec*a - (ec+es)*bb, ec*(a-bb)*(a-bb) + es*bb*bb
	}
	var second float64
	pmfC, pmfS := poissonPMF(lc), poissonPMF(ls)
	for nc, wc := range pmfC {
		for ns, ws := range pmfS {
			if nc+ns == 0 {
				continue
			}
			bb := b(float64(nc) / float64(nc+ns))
			ec, es := float64(nc)*pc, float64(ns)*ps
			mu := ec*a - (ec+es)*bb
			v := ec*(1-pc)*(a-bb)*(a-bb) + es*(1-ps)*bb*bb
			mean += wc * ws * mu
			second += wc * ws * (v + mu*mu)
		}
	}
	return mean, max(second-mean*mean, 0)
}

// exactBelow is the mean count of attempts a tick below which the share
// within a tick varies enough to be summed over.
const exactBelow = 8

// tickSeconds is the verdict's tick, in seconds, as the daemon judges.
const tickSeconds = 0.25

// poissonPMF is the Poisson distribution of mean lam over the counts that
// carry all but about 1e-7 of it.
func poissonPMF(lam float64) []float64 {
	hi := int(math.Ceil(lam + 6*math.Sqrt(lam) + 6))
	pmf := make([]float64, hi+1)
	lg, _ := math.Lgamma(1)
	for k := range pmf {
		if k > 0 {
			lg += math.Log(float64(k))
		}
		pmf[k] = math.Exp(float64(k)*math.Log(lam) - lam - lg)
	}
	if lam == 0 {
		pmf[0] = 1
	}
	return pmf
}
