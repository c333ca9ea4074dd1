package config

import (
	"reflect"
	"time"
)

// keyDecl declares one config key. Decoding, the unknown-key check, the daemon's
// restart warning and the test of the README's reference all read this
// declaration, so adding a key means adding it to keys and using its field.
type keyDecl struct {
	Section string // "proxy", "admin", "upstream", "canary", "journal", "incidents" or "gpio"
	Name    string // as written in a file
	// Default is the value when no file sets the key, of the field's type;
	// nil means the type's zero value.
	Default any
	Doc     string // one line, for whoever reads or documents the key
	Live    bool   // a reload applies a change; false: only a restart does

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
// README shows them. Validation beyond the key's type (ranges, required
// keys, pins) is in decode.go.
var keys = []keyDecl{
	proxyKey("listen", nil, restart, "required: the public address, host:port",
		func(p *Proxy) any { return &p.Listen }),
	proxyKey("connect_timeout", 5*time.Second, restart, "dialing an upstream",
		func(p *Proxy) any { return &p.ConnectTimeout }),
	proxyKey("header_timeout", 60*time.Second, restart, "silence allowed between reads from (and writes to) an upstream",
		func(p *Proxy) any { return &p.HeaderTimeout }),
	proxyKey("idle_timeout", 75*time.Second, restart, "an idle client keep-alive connection",
		func(p *Proxy) any { return &p.IdleTimeout }),
	proxyKey("client_header_timeout", 10*time.Second, restart, "a client's whole request head must arrive within this (nginx's client_header_timeout)",
		func(p *Proxy) any { return &p.ClientHeaderTimeout }),
	proxyKey("max_connections", 1024, restart, "client connections held at once; when full, the one idle longest is closed for a new one",
		func(p *Proxy) any { return &p.MaxConnections }),
	proxyKey("upstream_idle_timeout", 60*time.Second, restart, "an idle pooled upstream connection",
		func(p *Proxy) any { return &p.UpstreamIdle }),
	proxyKey("trusted_proxies", nil, restart, "peers (addresses, CIDR prefixes) whose X-Forwarded-For, -Proto and -Host are believed; none by default",
		func(p *Proxy) any { return &p.TrustedProxies }),
	proxyKey("access_log", false, live, "one log entry per proxied request",
		func(p *Proxy) any { return &p.AccessLog }),

	adminKey("socket", DefaultSocket, restart, "the unix socket canaryctl talks to",
		func(a *Admin) any { return &a.Socket }),
	adminKey("listen", "127.0.0.1:9090", restart, `TCP address of the status page and /metrics; "" turns it off`,
		func(a *Admin) any { return &a.Listen }),
	adminKey("token_file", "", restart, "bearer token for admin.listen; required when it is not loopback",
		func(a *Admin) any { return &a.TokenFile }),
	adminKey("public_read", false, restart, "with a token: true leaves reads (status, metrics, history, incidents) open",
		func(a *Admin) any { return &a.PublicRead }),
	adminKey("hosts", nil, restart, "more names admin.listen answers to in the Host header (DNS rebinding defence)",
		func(a *Admin) any { return &a.Hosts }),
	adminKey("socket_group", DefaultSocketGroup, restart, "group of the admin socket; the process's own when it does not exist",
		func(a *Admin) any { return &a.SocketGroup }),

	upstreamKey("name", nil, live, "required, unique",
		func(u *Upstream) any { return &u.Name }),
	upstreamKey("url", nil, live, "required: http or https, host:port, no path",
		func(u *Upstream) any { return &u.URL }),
	upstreamKey("weight", 1, live, "share of the round-robin; 0 takes it out of the rotation",
		func(u *Upstream) any { return &u.Weight }),
	upstreamKey("role", nil, live, `required: "stable" or "canary"`,
		func(u *Upstream) any { return (*string)(&u.Role) }),
	upstreamKey("max_fails", 1, live, "failures within fail_timeout that take it out, as nginx; 0 never",
		func(u *Upstream) any { return &u.MaxFails }),
	upstreamKey("fail_timeout", 10*time.Second, live, "the window for max_fails, and how long it stays out",
		func(u *Upstream) any { return &u.FailTimeout }),
	upstreamKey("health_path", "", live, "optional active health check: no traffic until it passes",
		func(u *Upstream) any { return &u.HealthPath }),
	upstreamKey("health_interval", 2*time.Second, live, "time between health checks",
		func(u *Upstream) any { return &u.HealthInterval }),
	upstreamKey("slow_start", nil, live, "a joining or recovered upstream ramps up to its weight over this time; 0 off",
		func(u *Upstream) any { return (*durationOrOff)(&u.SlowStart) }),

	canaryKey("version", "", live, "required with a canary upstream; a new value re-arms after a rollback",
		func(c *CanaryPolicy) any { return &c.Version }),
	canaryKey("false_alarm", 0.01, live, "the largest chance that a canary as good as the stable is ever judged bad during its release",
		func(c *CanaryPolicy) any { return &c.FalseAlarm }),
	canaryKey("tolerance", 1.25, live, "the canary may fail up to this many times as often as the stable before it matters",
		func(c *CanaryPolicy) any { return &c.Tolerance }),
	canaryKey("error_rate", 0.05, live, "both versions failing this often over the window is a shared failure; a rollout step waits until a canary failing this often would have been found",
		func(c *CanaryPolicy) any { return &c.ErrorRate }),
	canaryKey("min_requests", 20, live, "fewer canary requests since it went live: no verdict yet; a rollout step needs at least this many",
		func(c *CanaryPolicy) any { return &c.MinRequests }),
	canaryKey("window", 30*time.Second, live, "the span of the recent counts: the status's rates, a shared failure, the stable's p90 that sets what is slow",
		func(c *CanaryPolicy) any { return &c.Window }),
	canaryKey("auto_rollback", false, live, "a bad verdict rolls back by itself",
		func(c *CanaryPolicy) any { return &c.AutoRollback }),
	canaryKey("latency_ratio", 1.5, live, "a canary answer slower than this many times the stable's p90 counts as slow; 0 turns the latency test off",
		func(c *CanaryPolicy) any { return &c.LatencyRatio }),
	canaryKey("latency_floor", time.Millisecond, live, "...and only when it is also this much slower than the stable's p90: sub-millisecond noise never counts",
		func(c *CanaryPolicy) any { return &c.LatencyFloor }),
	canaryKey("steps", nil, live, "progressive rollout, percent of traffic to the canary, ascending",
		func(c *CanaryPolicy) any { return &c.Steps }),
	// The default, 5m, applies only with steps: see checkCanary.
	canaryKey("step_interval", nil, live, "time at each step; 5m when steps are set",
		func(c *CanaryPolicy) any { return &c.StepInterval }),
	canaryKey("sticky_header", "", live, "request header that keeps one user on one version",
		func(c *CanaryPolicy) any { return &c.StickyHeader }),
	canaryKey("sticky_cookie", "", live, "cookie that keeps one user on one version",
		func(c *CanaryPolicy) any { return &c.StickyCookie }),
	canaryKey("promote", "manual", live, `"manual", or "auto": promote after the last step`,
		func(c *CanaryPolicy) any { return &c.Promote }),
	canaryKey("override_header", "", live, `request header a tester sets to "always" or "never"`,
		func(c *CanaryPolicy) any { return &c.OverrideHeader }),
	canaryKey("version_header", "X-Canary-Version", live, `request header that tells a canary upstream its canary.version; "" off`,
		func(c *CanaryPolicy) any { return &c.VersionHeader }),

	journalKey("records", 100000, restart, "canary requests kept in memory for incident reports (about 20 bytes each, 256 at most)",
		func(j *Journal) any { return &j.Records }),
	journalKey("file", false, live, "also write them to journal/ in the state directory, in batches",
		func(j *Journal) any { return &j.File }),
	journalKey("file_max_bytes", 16<<20, live, "the file is rotated past this size; one old file is kept",
		func(j *Journal) any { return &j.FileMaxBytes }),
	journalKey("bodies", 0, live, "bytes of each POST, PUT, PATCH and DELETE body the canary served to keep; 0 off",
		func(j *Journal) any { return &j.Bodies }),

	incidentsKey("keep", 100, live, "incident reports kept in the state directory; the oldest go first",
		func(i *Incidents) any { return &i.Keep }),
	incidentsKey("max_bytes", 64<<20, live, "all incident reports together; the oldest go first, never the newest",
		func(i *Incidents) any { return &i.MaxBytes }),

	gpioKey("status_led", "GPIO22", restart, `BCM pin name; "" means not wired`,
		func(g *GPIO) any { return &g.StatusLED }),
	gpioKey("canary_green", "GPIO27", restart, `BCM pin name; "" means not wired`,
		func(g *GPIO) any { return &g.CanaryGreen }),
	gpioKey("canary_red", "GPIO17", restart, `BCM pin name; "" means not wired`,
		func(g *GPIO) any { return &g.CanaryRed }),
	gpioKey("button", "GPIO23", restart, `BCM pin name, to ground, active low; "" means not wired`,
		func(g *GPIO) any { return &g.Button }),
}

func proxyKey(name string, def any, live bool, doc string, f func(*Proxy) any) keyDecl {
	return keyDecl{"proxy", name, def, doc, live, func(c *Config, _ int) any { return f(&c.Proxy) }}
}

func adminKey(name string, def any, live bool, doc string, f func(*Admin) any) keyDecl {
	return keyDecl{"admin", name, def, doc, live, func(c *Config, _ int) any { return f(&c.Admin) }}
}

func upstreamKey(name string, def any, live bool, doc string, f func(*Upstream) any) keyDecl {
	return keyDecl{"upstream", name, def, doc, live, func(c *Config, i int) any { return f(&c.Upstreams[i]) }}
}

func canaryKey(name string, def any, live bool, doc string, f func(*CanaryPolicy) any) keyDecl {
	return keyDecl{"canary", name, def, doc, live, func(c *Config, _ int) any { return f(&c.Canary) }}
}

func journalKey(name string, def any, live bool, doc string, f func(*Journal) any) keyDecl {
	return keyDecl{"journal", name, def, doc, live, func(c *Config, _ int) any { return f(&c.Journal) }}
}

func incidentsKey(name string, def any, live bool, doc string, f func(*Incidents) any) keyDecl {
	return keyDecl{"incidents", name, def, doc, live, func(c *Config, _ int) any { return f(&c.Incidents) }}
}

func gpioKey(name string, def any, live bool, doc string, f func(*GPIO) any) keyDecl {
	return keyDecl{"gpio", name, def, doc, live, func(c *Config, _ int) any { return f(&c.GPIO) }}
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
