package route

import (
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/swrr"
)

// Buckets is how many buckets users are hashed into: the canary's share in
// hundredths of a percent picks how many of them go to the canary, as it
// picks swrr.PickSplit's share of requests.
const Buckets = swrr.Whole

// Affinity is the role a request must go to, decided before the pick.
type Affinity int

const (
	Either     Affinity = iota // the split decides
	StableOnly                 // a user whose bucket is above the share, or a tester's "never"
	CanaryOnly                 // a user whose bucket is below the share, or a tester's "always"
)

// split is what a Plan needs to send users by key: canary.sticky_* and
// canary.override_header, the version keys are hashed with, and the
// canary's share in buckets.
type split struct {
	stickyHeader, stickyCookie, overrideHeader []byte // nil when not set
	version                                    string
	share                                      uint32 // buckets below it go to the canary
	// versionHeader and versionValue tell a canary upstream its version
	// (canary.version_header); nil when off or without a canary.
	versionHeader, versionValue []byte
}

func newSplit(cfg *config.Config, canaryWeight, allWeight int) split {
	name := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	s := split{
		stickyHeader:   name(cfg.Canary.StickyHeader),
		stickyCookie:   name(cfg.Canary.StickyCookie),
		overrideHeader: name(cfg.Canary.OverrideHeader),
		version:        cfg.Canary.Version,
	}
	if cfg.HasCanary() && cfg.Canary.VersionHeader != "" {
		s.versionHeader = []byte(cfg.Canary.VersionHeader)
		s.versionValue = []byte(cfg.Canary.Version)
	}
	if allWeight > 0 {
		s.share = uint32((canaryWeight*Buckets + allWeight/2) / allWeight)
	}
	return s
}

// StickyHeader, StickyCookie and OverrideHeader name where a request's user
// key and a tester's override come from; nil when not configured. The
// caller must not change them.
func (p *Plan) StickyHeader() []byte   { return p.split.stickyHeader }
func (p *Plan) StickyCookie() []byte   { return p.split.stickyCookie }
func (p *Plan) OverrideHeader() []byte { return p.split.overrideHeader }

// VersionHeader is the header that tells a canary upstream its version
// (canary.version_header), and CanaryVersion its value; both nil when the
// header is off or the plan has no canary. A request to a stable upstream
// must carry neither, whatever the client sent. The caller must not change
// them.
func (p *Plan) VersionHeader() []byte { return p.split.versionHeader }
func (p *Plan) CanaryVersion() []byte { return p.split.versionValue }

// Version is the plan's canary.version, "" without one.
func (p *Plan) Version() string { return p.split.version }

// Keyed reports whether requests may carry a user key or an override, so
// the proxy looks for them only then.
func (p *Plan) Keyed() bool {
	return p.split.stickyHeader != nil || p.split.stickyCookie != nil || p.split.overrideHeader != nil
}

// Affinity decides a request's role from its user key and a tester's
// override value (either empty when the request has none). Only a serving
// canary splits: rolled back, promoted or without a canary, the mode alone
// decides, so a rolled-back canary is never reachable by a header.
func (p *Plan) Affinity(key, override []byte) Affinity {
	if p.Mode != state.Canary {
		return Either
	}
	switch string(override) {
	case "always":
		return CanaryOnly
	case "never":
		return StableOnly
	}
	if len(key) == 0 || (p.split.stickyHeader == nil && p.split.stickyCookie == nil) {
		return Either
	}
	if Bucket(key, p.split.version) < p.split.share {
		return CanaryOnly
	}
	return StableOnly
}

// PickFor is Pick for a request of affinity a: an upstream of that role,
// by SWRR among the role's upstreams; when none of them is live, the split
// picks, so a user is moved rather than refused.
func (p *Plan) PickFor(a Affinity, tried *swrr.Set, now time.Time) *Upstream {
	switch a {
	case CanaryOnly:
		return p.prefer(tried, p.excluded, &p.stable, now)
	case StableOnly:
		return p.prefer(tried, p.excluded, &p.canary, now)
	}
	return p.Pick(tried, now)
}

// Bucket is a user's bucket for a canary version, 0 to Buckets-1: a hash of
// both, so one user stays in one bucket while the version does, a rising
// share only adds users, and each new version picks a different first set.
// It does not allocate.
func Bucket(key []byte, version string) uint32 {
	// FNV-1a over the version, a separator and the key, then SplitMix64's
	// finalizer, which spreads FNV's weak low bits over all of them.
	h := uint64(14695981039346656037)
	for i := 0; i < len(version); i++ {
		h = (h ^ uint64(version[i])) * 1099511628211
	}
	h = (h ^ 0xff) * 1099511628211
	for _, c := range key {
		h = (h ^ uint64(c)) * 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return uint32(h % Buckets)
}
