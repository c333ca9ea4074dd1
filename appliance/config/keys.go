package config

import (
	"reflect"
	"time"
)

// keyDecl declares one config key. Decoding, the unknown-key check, the daemon's
// restart warning and the reference (docs/configuration.md, canaryd.toml(5),
// made from Reference) all read this declaration, so adding a key means
// adding it to keys and using its field.
type keyDecl struct {
	Section string // "proxy", "admin", "upstream", "canary", "journal", "incidents", "gpio" or "fleet"
	Name    string // as written in a file
	// Default is the value when no file sets the key, of the field's type;
	// nil means the type's zero value, and the reference shows no default.
	Default any
	// Doc is one line, for whoever reads or documents the key: what it
	// does, its range and what its zero means. A required key's starts
	// with "required".
	Doc  string
	Live bool // a reload applies a change; false: only a restart does
	// Example is a value the reference's example shows, as TOML, where
	// the default would say little; "" shows the default.
	Example string

	// field points to the key's value in c; entry picks the [[upstream]]
	// entry and is ignored by the other sections. Its type is the key's
	// TOML type: see (*table).set.
	field func(c *Config, entry int) any
}

func (k keyDecl) String() string { return k.Section + "." + k.Name }

// When a changed value takes effect, for keyDecl.Live.
const (
	live    = true  // at the next reload
	restart = false // when canaryd restarts
)

// DefaultSocket is admin.socket when no file sets it: where canaryctl looks
// for the daemon when told nothing else.
const DefaultSocket = "/run/canaryd/admin.sock"

// DefaultSocketGroup is admin.socket_group when no file sets it: the group
// the package creates for the people who may run canaryctl.
const DefaultSocketGroup = "canaryctl"

// keys is every key a config file may set, by section in the order the
// reference shows them. Validation beyond the key's type (ranges, required
// keys, pins) is in check.go.
var keys = []keyDecl{
	proxyKey("listen", nil, restart, `required: the public address, host:port (":80" is port 80 on every interface); canaryd -listen overrides it`,
		func(p *Proxy) any { return &p.Listen }).example(`"127.0.0.1:8080"`),
	proxyKey("connect_timeout", 5*time.Second, restart, "dialing an upstream; a timeout counts toward its max_fails, as a refused connection does",
		func(p *Proxy) any { return &p.ConnectTimeout }),
	proxyKey("header_timeout", 60*time.Second, restart, "silence allowed between reads from (and writes to) an upstream",
		func(p *Proxy) any { return &p.HeaderTimeout }),
	proxyKey("idle_timeout", 75*time.Second, restart, "an idle client keep-alive connection is closed after this (nginx's keepalive_timeout)",
		func(p *Proxy) any { return &p.IdleTimeout }),
	proxyKey("client_header_timeout", 10*time.Second, restart, "a client's whole request head must arrive within this, 100ms or more (nginx's client_header_timeout)",
		func(p *Proxy) any { return &p.ClientHeaderTimeout }),
	proxyKey("max_connections", 1024, restart, "client connections held at once, 16 to 1048576 (about 16 KiB each); when full, the one idle longest is closed for a new one",
		func(p *Proxy) any { return &p.MaxConnections }),
	proxyKey("upstream_idle_timeout", 60*time.Second, restart, "an idle pooled upstream connection is closed after this",
		func(p *Proxy) any { return &p.UpstreamIdle }),
	proxyKey("trusted_proxies", nil, restart, "peers (addresses, CIDR prefixes) whose X-Forwarded-For, -Proto and -Host are believed; from anyone else those headers are appended to or replaced",
		func(p *Proxy) any { return &p.TrustedProxies }).example(`["192.168.1.2", "10.0.0.0/8"]`),
	proxyKey("access_log", false, live, "one journal entry per proxied request: the request in nginx's combined format (without the query string), its request ID, upstream, status and duration beside it; off spares the SD card",
		func(p *Proxy) any { return &p.AccessLog }),

	adminKey("socket", DefaultSocket, restart, "the unix socket canaryctl talks to (HTTP, mode 0660, group socket_group); a relative path is in the config directory",
		func(a *Admin) any { return &a.Socket }),
	adminKey("listen", "127.0.0.1:9090", restart, `TCP address of the status page, /metrics and the admin API; "" turns it off; other than loopback it needs token_file`,
		func(a *Admin) any { return &a.Listen }),
	adminKey("token_file", "", restart, "file holding the bearer token that admin.listen asks of mutations; a relative path is in the config directory; required when admin.listen is not loopback",
		func(a *Admin) any { return &a.TokenFile }).example(`"admin.token"`),
	adminKey("public_read", false, restart, "with a token: true leaves reads (status, metrics, history, incidents) open without it",
		func(a *Admin) any { return &a.PublicRead }),
	adminKey("hosts", nil, restart, "more names admin.listen answers to in the Host header, without a port (DNS rebinding defence); the Pi's own names are known",
		func(a *Admin) any { return &a.Hosts }).example(`["pi.example.lan"]`),
	adminKey("socket_group", DefaultSocketGroup, restart, "group of the admin socket, whose members may run canaryctl; the process's own group when it does not exist",
		func(a *Admin) any { return &a.SocketGroup }),

	upstreamKey("name", nil, live, "required: unique among the upstreams; letters, digits, '.', '_' and '-'",
		func(u *Upstream) any { return &u.Name }).example(`"w1"`),
	upstreamKey("url", nil, live, "required: http:// or https://, host and port, no path, query or user",
		func(u *Upstream) any { return &u.URL }).example(`"http://127.0.0.2:8001"`),
	upstreamKey("weight", 1, live, "share of the weighted round-robin, 0 to 1000, as nginx's weight=; 0 takes it out of the rotation",
		func(u *Upstream) any { return &u.Weight }),
	upstreamKey("role", nil, live, `required: "stable" or "canary"`,
		func(u *Upstream) any { return (*string)(&u.Role) }).example(`"stable"`),
	upstreamKey("max_fails", 1, live, "refused or reset connections and timeouts within fail_timeout that take it out of the rotation, as nginx; 0 never",
		func(u *Upstream) any { return &u.MaxFails }),
	upstreamKey("fail_timeout", 10*time.Second, live, "the window for max_fails, and how long it stays out",
		func(u *Upstream) any { return &u.FailTimeout }),
	upstreamKey("health_path", "", live, `optional active health check, a GET of url and this path (2xx or 3xx passes): no traffic until two in a row pass, out after three failures; "" off`,
		func(u *Upstream) any { return &u.HealthPath }).example(`"/healthz"`),
	upstreamKey("health_interval", 2*time.Second, live, "time between health checks, 100ms to 1h",
		func(u *Upstream) any { return &u.HealthInterval }),
	upstreamKey("slow_start", nil, live, `a joining or recovered upstream ramps up from weight 1 to its weight over this time, 1s to 1h; "0s" or unset: at once`,
		func(u *Upstream) any { return (*durationOrOff)(&u.SlowStart) }).example(`"30s"`),

	canaryKey("version", "", live, "required with a canary upstream: the release's name, sent to its upstreams in version_header; a new value re-arms after a rollback",
		func(c *CanaryPolicy) any { return &c.Version }).example(`"v2"`),
	canaryKey("false_alarm", 0.01, live, "the largest chance that a canary as good as the stable is ever judged bad during its release, however long it runs; 0.000001 to 0.5",
		func(c *CanaryPolicy) any { return &c.FalseAlarm }),
	canaryKey("tolerance", 1.25, live, "the canary may fail up to this many times as often as the stable before it matters; 1 to 100",
		func(c *CanaryPolicy) any { return &c.Tolerance }),
	canaryKey("error_rate", 0.05, live, "both versions failing this often over the window is a shared failure, not the canary's; a rollout step waits until a canary failing this often would have been found",
		func(c *CanaryPolicy) any { return &c.ErrorRate }),
	canaryKey("min_requests", 20, live, "fewer canary requests since it went live: no verdict yet; a rollout step needs at least this many",
		func(c *CanaryPolicy) any { return &c.MinRequests }),
	canaryKey("window", 30*time.Second, live, "the span of the recent counts: the status's rates, a shared failure, the stable's p90 that sets what is slow",
		func(c *CanaryPolicy) any { return &c.Window }),
	canaryKey("auto_rollback", false, live, "a bad verdict rolls back by itself; false: the canary light turns red and a person decides",
		func(c *CanaryPolicy) any { return &c.AutoRollback }),
	canaryKey("latency_ratio", 1.5, live, "a canary answer slower than this many times the stable's p90 counts as slow, 1.25 to 1000; 0 turns the latency test off",
		func(c *CanaryPolicy) any { return &c.LatencyRatio }),
	canaryKey("latency_floor", time.Millisecond, live, "a slow answer must also be this much slower than the stable's p90, up to 1m: sub-millisecond noise never counts",
		func(c *CanaryPolicy) any { return &c.LatencyFloor }),
	canaryKey("steps", nil, live, "progressive rollout: percent of new requests to the canary at each step, ascending, each above 0 and at most 100; none: the canary gets its share of the weights",
		func(c *CanaryPolicy) any { return &c.Steps }).example("[1, 5, 25, 50]"),
	// The default, 5m, applies only with steps: see checkCanary.
	canaryKey("step_interval", nil, live, "time at each step, 1s to 720h; 5m when steps are set",
		func(c *CanaryPolicy) any { return &c.StepInterval }).example(`"5m"`),
	canaryKey("sticky_header", "", live, "request header whose value keeps one user on one version (the header, else sticky_cookie)",
		func(c *CanaryPolicy) any { return &c.StickyHeader }).example(`"X-User-ID"`),
	canaryKey("sticky_cookie", "", live, "cookie whose value keeps one user on one version",
		func(c *CanaryPolicy) any { return &c.StickyCookie }).example(`"uid"`),
	canaryKey("promote", "manual", live, `"manual", or "auto": promote by itself after the last step`,
		func(c *CanaryPolicy) any { return &c.Promote }),
	canaryKey("override_header", "", live, `request header a tester sets to "always" (the canary) or "never" (the stable); never reaches a rolled-back canary`,
		func(c *CanaryPolicy) any { return &c.OverrideHeader }).example(`"X-Canary"`),
	canaryKey("version_header", "X-Canary-Version", live, `request header that tells a canary upstream its canary.version; "" off`,
		func(c *CanaryPolicy) any { return &c.VersionHeader }),

	journalKey("records", 100000, restart, "canary requests kept in memory for incident reports, 0 (off) to 1000000; about 20 bytes each, 256 at most",
		func(j *Journal) any { return &j.Records }),
	journalKey("file", false, live, "also write them to journal/ in the state directory, in batches",
		func(j *Journal) any { return &j.File }),
	journalKey("file_max_bytes", 16<<20, live, "the file is rotated past this size, 64 KiB to 1 GiB; one old file is kept",
		func(j *Journal) any { return &j.FileMaxBytes }),
	journalKey("bodies", 0, live, "bytes of each POST, PUT, PATCH and DELETE body the canary served to keep, up to 65536; 0 off",
		func(j *Journal) any { return &j.Bodies }),

	incidentsKey("keep", 100, live, "incident reports kept in the state directory, 1 to 10000; the oldest go first",
		func(i *Incidents) any { return &i.Keep }),
	incidentsKey("max_bytes", 64<<20, live, "all incident reports together, 1 MiB to 1 GiB; the oldest go first, never the newest",
		func(i *Incidents) any { return &i.MaxBytes }),

	gpioKey("status_led", "GPIO22", restart, `the status LED: green while serving, blinking on the last good config after a bad one; "" means not wired`,
		func(g *GPIO) any { return &g.StatusLED }),
	gpioKey("canary_green", "GPIO27", restart, `the canary LED's green: the canary serves; "" means not wired`,
		func(g *GPIO) any { return &g.CanaryGreen }),
	gpioKey("canary_red", "GPIO17", restart, `the canary LED's red: a bad verdict, blinking once rolled back; "" means not wired`,
		func(g *GPIO) any { return &g.CanaryRed }),
	gpioKey("button", "GPIO23", restart, `the button, to ground, internal pull-up, active low: a press rolls back, a long press (3 s or more) resumes; "" means not wired`,
		func(g *GPIO) any { return &g.Button }),

	fleetKey("servers", nil, restart, `NATS URLs ("nats://hub.example:4222"); none: no fleet, no connection. Members with the same release share its rollback latch`,
		func(f *Fleet) any { return &f.Servers }).example(`["nats://127.0.0.1:4222"]`),
	fleetKey("name", "", restart, `this member's name in the fleet: letters, digits, - and _; "" is the host name`,
		func(f *Fleet) any { return &f.Name }),
	fleetKey("release", "canary-pi", restart, "the release this member serves: letters, digits, - and _",
		func(f *Fleet) any { return &f.Release }),
	fleetKey("credentials", "", restart, "a NATS .creds file (JWT and seed); a relative path is in the config directory",
		func(f *Fleet) any { return &f.Credentials }),
	fleetKey("token_file", "", restart, "a file holding a NATS token, instead of credentials; a relative path is in the config directory",
		func(f *Fleet) any { return &f.TokenFile }),
	fleetKey("ca_file", "", restart, "PEM roots for TLS to NATS (tls:// URLs); \"\" is the system's; a relative path is in the config directory",
		func(f *Fleet) any { return &f.CAFile }),
}

// example sets k.Example.
func (k keyDecl) example(toml string) keyDecl {
	k.Example = toml
	return k
}

func proxyKey(name string, def any, live bool, doc string, f func(*Proxy) any) keyDecl {
	return keyDecl{Section: "proxy", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.Proxy) }}
}

func adminKey(name string, def any, live bool, doc string, f func(*Admin) any) keyDecl {
	return keyDecl{Section: "admin", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.Admin) }}
}

func upstreamKey(name string, def any, live bool, doc string, f func(*Upstream) any) keyDecl {
	return keyDecl{Section: "upstream", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, i int) any { return f(&c.Upstreams[i]) }}
}

func canaryKey(name string, def any, live bool, doc string, f func(*CanaryPolicy) any) keyDecl {
	return keyDecl{Section: "canary", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.Canary) }}
}

func journalKey(name string, def any, live bool, doc string, f func(*Journal) any) keyDecl {
	return keyDecl{Section: "journal", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.Journal) }}
}

func incidentsKey(name string, def any, live bool, doc string, f func(*Incidents) any) keyDecl {
	return keyDecl{Section: "incidents", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.Incidents) }}
}

func fleetKey(name string, def any, live bool, doc string, f func(*Fleet) any) keyDecl {
	return keyDecl{Section: "fleet", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.Fleet) }}
}

func gpioKey(name string, def any, live bool, doc string, f func(*GPIO) any) keyDecl {
	return keyDecl{Section: "gpio", Name: name, Default: def, Doc: doc, Live: live,
		field: func(c *Config, _ int) any { return f(&c.GPIO) }}
}

// sectionDocs say what each section is for, in the reference.
var sectionDocs = map[string]string{
	"proxy":     "The public side: where clients connect, and the timeouts toward clients and upstreams.",
	"admin":     "Where canaryctl and the status page reach the daemon: the admin socket, and a TCP listener for the status page, /metrics and the admin API.",
	"upstream":  `One [[upstream]] table per backend server, at least one with role = "stable". Its role puts it on the stable or the canary side of the release.`,
	"canary":    "The release under test: its version, how it is judged, and optionally a progressive rollout and sticky users.",
	"journal":   "What the canary served, kept for the incident reports.",
	"incidents": "The reports written at every rollback, in the state directory.",
	"gpio":      "The front panel's pins, by BCM name (GPIO0 to GPIO27): two LEDs (one of them two-coloured) and a push button.",
	"fleet":     "Many canary-pis sharing one release over NATS JetStream: a rollback on any member rolls back all. Without servers, none of it runs.",
}

// sections are the tables a config file may have, in the order of keys;
// "upstream" is the one array of tables.
var sections = func() []string {
	var names []string
	for _, k := range keys {
		if len(names) == 0 || names[len(names)-1] != k.Section {
			names = append(names, k.Section)
		}
	}
	return names
}()

// keysOf returns the keys of one section.
func keysOf(section string) []keyDecl {
	var ks []keyDecl
	for _, k := range keys {
		if k.Section == section {
			ks = append(ks, k)
		}
	}
	return ks
}

// RestartNeeded lists the keys, as "section.name", whose value differs
// between old and next but that a reload does not apply. An [[upstream]]
// entry is compared with the old entry of the same name; adding or removing
// one is a reload's job.
func RestartNeeded(old, next *Config) []string {
	var changed []string
	// The fields are pointers, which DeepEqual compares by what they point to.
	for _, k := range keys {
		if k.Live {
			continue
		}
		if k.Section != "upstream" {
			if !reflect.DeepEqual(k.field(old, 0), k.field(next, 0)) {
				changed = append(changed, k.String())
			}
			continue
		}
		for i, u := range next.Upstreams {
			j := old.upstream(u.Name)
			if j >= 0 && !reflect.DeepEqual(k.field(old, j), k.field(next, i)) {
				changed = append(changed, k.String())
				break
			}
		}
	}
	return changed
}

// upstream returns the index of the upstream named name, or -1.
func (c *Config) upstream(name string) int {
	for i, u := range c.Upstreams {
		if u.Name == name {
			return i
		}
	}
	return -1
}
