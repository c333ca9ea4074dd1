// Package analysis judges a canary release: whether the canary fails more
// often, or answers more slowly, than the stable version beside it. It is
// pure logic with the clock passed in: the daemon feeds it counts four times
// a second and reads a verdict.
//
// # The method
//
// The verdict is a pair of anytime-valid sequential tests, one of errors
// and one of slow answers, after Lindon, Ham, Tingley and Bojinov, "Rapid
// regression detection in software deployments through sequential testing"
// (KDD 2022) and Lindon and Malek, "Anytime-valid inference for multinomial
// count data" (NeurIPS 2022). Each tick (250 ms) brings, for each version,
// its attempts and how many of them were events: errors (5xx answers,
// refused and reset connections, timeouts, also of attempts a client's
// request was then retried from) or slow answers. Condition on an event
// happening in a tick: if the canary's event rate is r times the stable's
// and the canary had a share ρ of the tick's attempts, the event is the
// canary's with probability θ(r) = ρr/(ρr+1−ρ). Under the null, r at most
// the tolerance r₀ (canary.tolerance for errors; 1 for slow answers, whose
// tolerance is in what counts as slow), that is at most θ(r₀). Every tick
// multiplies, for each alternative r among a grid of 1.25 to 300 times r₀,
// the likelihood ratio of the tick's events under θ(r) against θ(r₀). The
// unknown common rate, which can change at any moment (a shared database
// failing), drops out: only how the events split between the versions
// counts, so a failure both versions share carries no evidence either way.
//
// A regression need not start with the release. The test's value is a
// mixture over the alternatives (equal weights) and over when the
// regression began (90% at the release's start, the rest spread over later
// times with a heavy tail: priorUsed), in Shiryaev and Roberts' recursive
// form, S ← (S + π_t)·LR_t. Weighted so, it is a nonnegative martingale
// with expectation 1 under the null, and by Ville's inequality the chance
// that it ever reaches 1/α, over the whole release however long it runs
// and however often it is read, is at most α. The errors test uses two
// thirds of canary.false_alarm and the slow-answer test one third, so that
// the chance that either ever judges a canary as good as the stable bad is
// at most canary.false_alarm. A bad verdict stays until the release ends
// (a new canary.version, a resume): the evidence moved it once, and a light
// that turned red must not flicker back.
//
// What counts as slow is fixed before the answers it judges arrive: the
// stable's p90 over canary.window for the stable's answers, and the larger
// of latency_ratio times that and that plus latency_floor for the canary's.
// A canary as fast as the stable then has fewer slow answers than it,
// whatever the shape of the latency distribution; one slower by less than
// latency_ratio and latency_floor no more; one several times slower many
// more.
//
// # Assumptions
//
//   - Requests fail, and are slow, independently of each other given the
//     moment: a burst of errors from one client (a retry loop, a user with a
//     broken account) breaks this, since its requests all land on the
//     version its sticky key chose. Such a burst looks like a regression of
//     that version; the tolerance does not absorb it.
//   - Within a tick, which version serves a request does not depend on
//     whether it fails. max_fails bends this: a canary that fails a
//     connection leaves the rotation at once, so its share of the tick
//     shrinks after the failure. Ticks are short (250 ms) to keep this
//     small, and the simulation in the tests covers it.
//   - While a canary upstream is out of the rotation (max_fails, or a health
//     check after it first passed), canaryd probes it once a second, beside
//     two probes of stable upstreams of the same kind (a connection, or its
//     health_path): a dead canary has no traffic to fail, and its probes are
//     its evidence. They are a source of their own, judged at their own
//     share, never mixed with the traffic's.
//
// The simulation in sim_test.go measures both properties with fixed seeds:
// the share of releases a canary as good as the stable is ever judged bad
// in (at 2, 20 and 200 requests a second, canary shares of 1% to 50%,
// error rates of 0 to 5% and lognormal latencies) and the time to a bad
// verdict for real regressions, beside the oracle sequential probability
// ratio test that knows the true ratio: the fastest any test of that
// alternative can be at the same false-alarm rate.
package analysis
