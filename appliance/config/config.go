// Package config reads canaryd's configuration directory into one validated,
// immutable Config. A directory that does not validate yields an error naming
// the file and line to fix, and no Config: callers keep the one they had.
package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// Role says which side of the release an upstream is on.
type Role string

const (
	Stable Role = "stable"
	Canary Role = "canary"
)

// Config is a complete, validated configuration. It is never modified after
// Load returns it; a reload builds a new one.
type Config struct {
	Proxy     Proxy
	Admin     Admin
	Upstreams []Upstream
	Canary    CanaryPolicy
	Journal   Journal
	Incidents Incidents
	GPIO      GPIO
	Fleet     Fleet
	// Files are the config files that were merged, in the order read.
	Files []string
	// Digest identifies the directory's content (file names and bytes):
	// equal digests mean nothing a reload could apply has changed.
	Digest [32]byte
}

// Proxy is the public side of the appliance.
type Proxy struct {
	Listen string // required, host:port

	// Timeouts toward upstreams and clients. Zero never occurs after Load:
	// every one has a default.
	ConnectTimeout time.Duration // dialing an upstream (default 5s)
	HeaderTimeout  time.Duration // waiting for an upstream's response headers (default 60s)
	IdleTimeout    time.Duration // an idle client keep-alive connection (default 75s)
	UpstreamIdle   time.Duration // an idle pooled upstream connection (default 60s)
	// ClientHeaderTimeout bounds the arrival of a client's request head
	// (default 10s), much shorter than IdleTimeout so that slow clients
	// cannot hold connections.
	ClientHeaderTimeout time.Duration
	MaxConnections      int // client connections held at once (default 1024)
	// TrustedProxies are the peers whose forwarding headers are believed:
	// from them, the client is the last address in X-Forwarded-For that is
	// not one of them, and X-Forwarded-Proto and -Host pass as they came.
	// From anyone else those headers are appended to or replaced, never
	// believed.
	TrustedProxies []netip.Prefix
	AccessLog      bool // one log entry per proxied request (default off)
}

// Journal is the record of the requests canary upstreams served, that
// incident reports are made of.
type Journal struct {
	Records      int  // kept in memory, newest first out of a ring
	File         bool // also written to the state directory, in batches
	FileMaxBytes int  // the file is rotated past this size
	Bodies       int  // bytes of each non-idempotent request body kept; 0 off
}

// Incidents bound the incident reports kept in the state directory: the
// oldest go first, never the newest.
type Incidents struct {
	Keep     int // reports
	MaxBytes int // all reports together
}

// Admin is where canaryctl and the status page reach the daemon.
type Admin struct {
	Socket    string // unix socket path (default /run/canaryd/admin.sock)
	Listen    string // optional TCP listener for the status page and /metrics; "" disables
	TokenFile string // resolved to an absolute path; "" means no token
	// PublicRead leaves the reads on Listen open when there is a token;
	// false (the default) asks the token for them too.
	PublicRead bool
	// Hosts are names Listen answers to beside its own (see admin.Hosts).
	Hosts []string
	// SocketGroup owns Socket, so that its members may run canaryctl.
	SocketGroup string
}

// Upstream is one backend server.
type Upstream struct {
	Name        string
	URL         *url.URL // scheme http or https, host:port, no path
	Weight      int      // 0 means off
	Role        Role
	MaxFails    int           // 0 disables failure accounting, as in nginx
	FailTimeout time.Duration // default 10s
	// HealthPath, when set, is probed every HealthInterval: the upstream
	// takes traffic only once it answers there (see appliance/health).
	HealthPath     string
	HealthInterval time.Duration // default 2s
	// SlowStart is how long the upstream takes to ramp up to its weight
	// when it joins or recovers; 0 (the default) takes it at once.
	SlowStart time.Duration
	Pos       Pos // where the [[upstream]] entry starts
}

// CanaryPolicy is the [canary] section.
type CanaryPolicy struct {
	Version string
	// FalseAlarm bounds the chance that a canary as good as the stable
	// is ever judged bad during its release (default 0.01).
	FalseAlarm float64
	// Tolerance is how many times as often as the stable the canary may
	// fail before the difference matters (default 1.25).
	Tolerance    float64
	ErrorRate    float64       // shared failure level, and a rollout's floor (default 0.05)
	MinRequests  int           // default 20
	Window       time.Duration // default 30s
	AutoRollback bool
	// LatencyRatio and LatencyFloor say what a slow canary answer is:
	// slower than LatencyRatio times the stable's p90 (default 1.5; 0
	// turns the latency test off) and than that p90 plus LatencyFloor
	// (default 1ms).
	LatencyRatio   float64
	LatencyFloor   time.Duration
	Steps          []float64 // percent of traffic to the canary, ascending
	StepInterval   time.Duration
	StickyHeader   string
	StickyCookie   string
	Promote        string // "manual" (default) or "auto"
	OverrideHeader string
	VersionHeader  string // tells a canary upstream its Version; "" off
}

// GPIO names the header pins, as periph names them ("GPIO17"). An empty
// name means that part is not wired.
type GPIO struct {
	StatusLED   string
	CanaryGreen string
	CanaryRed   string
	Button      string
}

// Fleet is the [fleet] section: the members of a fleet share one release
// (its latch) over NATS. No servers: no fleet, and nothing of it runs.
type Fleet struct {
	Servers     []string // NATS URLs
	Name        string   // this member; "" is the host name
	Release     string   // members with the same release share it
	Credentials string   // a NATS .creds file
	TokenFile   string   // a file holding a NATS token
	CAFile      string   // roots for TLS to NATS
}

// Enabled reports whether the config joins a fleet.
func (f Fleet) Enabled() bool { return len(f.Servers) > 0 }

// Pos is a place in a config file, for error messages.
type Pos struct {
	File string // base name of the file
	Line int    // 1-based; 0 when the problem is a key missing from the whole file
}

// String formats p as "file:line", or just "file" when the line is unknown.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// HealthCheck identifies u's active health check: "" without a health_path;
// otherwise the URL it probes and how often. Two configs with the same
// HealthCheck for an upstream share the check's outcome; a changed one
// starts over, out of the rotation until it passes.
func (u Upstream) HealthCheck() string {
	if u.HealthPath == "" || u.URL == nil {
		return ""
	}
	return u.URL.String() + u.HealthPath + " every " + u.HealthInterval.String()
}

// HealthURL is what u's health check GETs.
func (u Upstream) HealthURL() string { return u.URL.String() + u.HealthPath }

// HasCanary reports whether any canary upstream is configured.
func (c *Config) HasCanary() bool {
	for _, u := range c.Upstreams {
		if u.Role == Canary {
			return true
		}
	}
	return false
}
