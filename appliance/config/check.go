package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func checkProxy(p *Proxy, t *table) {
	if p.Listen == "" {
		t.errs.add(t.at("listen"), `proxy.listen is required (the public address, e.g. ":8080")`)
	} else if err := checkHostPort(p.Listen); err != nil {
		t.errs.add(t.at("listen"), "proxy.listen: %q %v", p.Listen, err)
	}
	if p.ClientHeaderTimeout < 100*time.Millisecond {
		t.errs.add(t.at("client_header_timeout"), "proxy.client_header_timeout = %v: want 100ms or more (nginx's default is 60s, ours 10s)",
			p.ClientHeaderTimeout)
	}
	if p.MaxConnections < 16 || p.MaxConnections > 1<<20 {
		t.errs.add(t.at("max_connections"), "proxy.max_connections = %d: want 16 to 1048576 (each waiting client connection holds about 16 KiB)", p.MaxConnections)
	}
}

func checkAdmin(a *Admin, t *table, dir string) {
	if a.Socket == "" {
		t.errs.add(t.at("socket"), "admin.socket must not be empty: canaryctl reaches the daemon there")
	}
	// Relative paths are relative to the config directory, not to wherever
	// the daemon happened to be started, so the directory means the same
	// thing however it is run.
	a.Socket = resolve(dir, a.Socket)
	a.TokenFile = resolve(dir, a.TokenFile)
	if a.Listen != "" {
		if err := checkHostPort(a.Listen); err != nil {
			t.errs.add(t.at("listen"), `admin.listen: %q %v, or "" to turn it off`, a.Listen, err)
		} else if a.TokenFile == "" && !t.rejected("token_file") {
			// Without a token anyone who reaches the port could roll back;
			// only the machine itself is trusted that far.
			if why := notLoopback(a.Listen); why != "" {
				t.errs.add(t.at("listen"), "admin.listen: %q %s: set admin.token_file to require a token, or listen on 127.0.0.1", a.Listen, why)
			}
		}
	}
	for _, h := range a.Hosts {
		if !isHostName(h) {
			t.errs.add(t.at("hosts"), `admin.hosts: %q is not a host name or an IP address (want e.g. "pi.example.lan", no port)`, h)
			break
		}
	}
	if a.SocketGroup != "" && !validName.MatchString(a.SocketGroup) {
		t.errs.add(t.at("socket_group"), `admin.socket_group: %q is not a group name (want e.g. "canaryctl", or "" for the process's own group)`, a.SocketGroup)
	}
}

// lookupHost resolves a listen address's host name; tests replace it.
var lookupHost = func(ctx context.Context, host string) ([]net.IPAddr, error) {
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

// notLoopback says why a listen address can be reached from other machines,
// or "" when it cannot: its host is a loopback address, or a name that
// resolves to loopback addresses only.
func notLoopback(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	if host == "" {
		return "listens on every interface"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Unmap().IsLoopback() {
			return ""
		}
		if ip.IsUnspecified() {
			return "listens on every interface"
		}
		return "is not a loopback address"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ips, err := lookupHost(ctx, host)
	if err != nil || len(ips) == 0 {
		return "does not resolve, so it is not known to be loopback"
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Sprintf("resolves to %s, not a loopback address", ip.IP)
		}
	}
	return ""
}

// isHostName reports whether s is an IP address or a DNS name, as a Host
// header carries it without its port.
func isHostName(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func checkUpstreams(us []Upstream, ts []*table, first string, errs *errorList) {
	names := map[string]Pos{}
	for i, t := range ts {
		u := &us[i]
		u.Pos = t.pos
		checkUpstream(u, t)
		if i == maxUpstreams {
			errs.add(t.pos, "more than %d upstreams", maxUpstreams)
		}
		if u.Name != "" {
			if prev, dup := names[u.Name]; dup {
				errs.add(t.at("name"), "upstream name %q is already used in %s", u.Name, prev)
			} else {
				names[u.Name] = t.at("name")
			}
		}
	}

	if len(us) == 0 {
		errs.add(Pos{File: first}, `no [[upstream]] configured (want at least one with role = "stable")`)
	}
	hasStable := false
	var canary *Upstream
	for i := range us {
		switch {
		case us[i].Role == Stable && us[i].Weight > 0:
			hasStable = true
		case us[i].Role == Canary && canary == nil:
			canary = &us[i]
		}
	}
	if canary != nil && !hasStable {
		errs.add(canary.Pos, `upstream %q is a canary, but no upstream with role = "stable" and a weight above 0 is there to roll back to`, canary.Name)
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// upstreamName names an [[upstream]] entry in messages: by its name when it
// has a usable one.
func upstreamName(name string) string {
	if validName.MatchString(name) {
		return fmt.Sprintf("upstream %q", name)
	}
	return "upstream"
}

func checkUpstream(u *Upstream, t *table) {
	who := upstreamName(u.Name)
	switch {
	case u.Name == "":
		t.errs.add(t.at("name"), `upstream: name is required (e.g. name = "web1")`)
	case !validName.MatchString(u.Name):
		t.errs.add(t.at("name"), "upstream %q: name may only have letters, digits, '.', '_' and '-'", u.Name)
	}
	// A url that was there but did not parse has been reported already.
	if u.URL == nil && !t.rejected("url") {
		t.errs.add(t.at("url"), `%s: url is required (e.g. url = "http://10.0.0.2:8080")`, who)
	}
	if u.Weight < 0 || u.Weight > 1000 {
		t.errs.add(t.at("weight"), "%s: weight %d is out of range (want 0 to 1000; 0 takes it out of rotation)", who, u.Weight)
	}
	switch u.Role {
	case Stable, Canary:
	case "":
		t.errs.add(t.at("role"), `%s: role is required ("stable" or "canary")`, who)
	default:
		t.errs.add(t.at("role"), `%s: role %q is not "stable" or "canary"`, who, u.Role)
	}
	if u.MaxFails < 0 {
		t.errs.add(t.at("max_fails"), "%s: max_fails %d is negative (want 0 or more; 0 turns failure accounting off)", who, u.MaxFails)
	}
	if u.HealthPath != "" && (!strings.HasPrefix(u.HealthPath, "/") || strings.ContainsAny(u.HealthPath, " \t\r\n")) {
		t.errs.add(t.at("health_path"), `%s: health_path %q is not a path (want one that starts with "/", e.g. "/healthz")`, who, u.HealthPath)
	}
	if u.HealthInterval < 100*time.Millisecond || u.HealthInterval > time.Hour {
		t.errs.add(t.at("health_interval"), "%s: health_interval %v is out of range (want 100ms to 1h)", who, u.HealthInterval)
	}
	if u.SlowStart != 0 && (u.SlowStart < time.Second || u.SlowStart > time.Hour) {
		t.errs.add(t.at("slow_start"), `%s: slow_start %v is out of range (want "0s" for off, or 1s to 1h)`, who, u.SlowStart)
	}
}

// parseUpstreamURL accepts the one URL shape the proxy can use as it is: a
// scheme and an authority. The port is made explicit so that every consumer
// dials and displays the same address.
func parseUpstreamURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		return nil, errors.New(`missing scheme (want "http://host:port" or "https://host:port")`)
	}
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("unsupported scheme %q (want http or https)", u.Scheme)
	case u.User != nil:
		return nil, errors.New("must not contain a user or password (the proxy passes the client's Authorization header through)")
	case u.Hostname() == "":
		return nil, errors.New("missing host")
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("must not have a path (%q): requests keep their own path", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("must not have a query")
	case u.Fragment != "":
		return nil, errors.New("must not have a fragment")
	}
	port := u.Port()
	switch {
	case port == "" && u.Scheme == "https":
		port = "443"
	case port == "":
		port = "80"
	default:
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("port %s is out of range (want 1 to 65535)", port)
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), port)}, nil
}

func checkCanary(c *CanaryPolicy, t *table, ups []Upstream) {
	if len(c.Steps) > 0 && c.StepInterval == 0 {
		c.StepInterval = 5 * time.Minute
	}

	for _, u := range ups {
		if u.Role != Canary || c.Version != "" {
			continue
		}
		// Without a [canary] section the canary upstream is the place to
		// look at; a line 0 in the first file would say nothing.
		at := t.at("version")
		if at.Line == 0 {
			at = u.Pos
		}
		t.errs.add(at, `canary.version is required: upstream %q is a canary (name its release, e.g. version = "v2")`, u.Name)
		break
	}
	if !(c.FalseAlarm >= 1e-6 && c.FalseAlarm <= 0.5) {
		t.errs.add(t.at("false_alarm"), "canary.false_alarm: %v is out of range (want 0.000001 to 0.5; 0.01 is one release in a hundred)", c.FalseAlarm)
	}
	if !(c.Tolerance >= 1 && c.Tolerance <= 100) {
		t.errs.add(t.at("tolerance"), "canary.tolerance: %v is out of range (want 1 to 100; 1.25 lets the canary fail a quarter more often than the stable)", c.Tolerance)
	}
	if !(c.LatencyFloor >= 0 && c.LatencyFloor <= time.Minute) {
		t.errs.add(t.at("latency_floor"), "canary.latency_floor: %v is out of range (want 0s to 1m; 1ms keeps sub-millisecond noise out)", c.LatencyFloor)
	}
	if !(c.ErrorRate > 0 && c.ErrorRate <= 1) {
		t.errs.add(t.at("error_rate"), "canary.error_rate: %v is out of range (want more than 0 and at most 1; 0.05 is 5%%)", c.ErrorRate)
	}
	if c.MinRequests < 1 {
		t.errs.add(t.at("min_requests"), "canary.min_requests: %d is too small (want at least 1)", c.MinRequests)
	}
	// The window's latency buckets are up to 12.5% wide: a ratio closer to
	// 1 would judge the buckets rather than the canary.
	if c.LatencyRatio != 0 && !(c.LatencyRatio >= 1.25 && c.LatencyRatio <= 1000) {
		t.errs.add(t.at("latency_ratio"), "canary.latency_ratio: %v is out of range (want 0 for off, or 1.25 to 1000; 2 is twice the stable's p90)", c.LatencyRatio)
	}
	for i, s := range c.Steps {
		if !(s > 0 && s <= 100) {
			t.errs.add(t.at("steps"), "canary.steps: %v is not a share of traffic (want percentages more than 0 and at most 100)", s)
			break
		}
		if i > 0 && s <= c.Steps[i-1] {
			t.errs.add(t.at("steps"), "canary.steps: %v follows %v (want strictly ascending steps)", s, c.Steps[i-1])
			break
		}
	}
	// The rollout is judged four times a second; a step needs a verdict.
	if len(c.Steps) > 0 && !(c.StepInterval >= time.Second && c.StepInterval <= 30*24*time.Hour) {
		t.errs.add(t.at("step_interval"), "canary.step_interval: %v is out of range (want 1s to 720h; 5m is five minutes at each step)", c.StepInterval)
	}
	if c.Promote != "manual" && c.Promote != "auto" {
		t.errs.add(t.at("promote"), `canary.promote: %q is not "manual" or "auto"`, c.Promote)
	}
	for _, h := range []struct{ key, val, what string }{
		{"sticky_header", c.StickyHeader, "HTTP header name"},
		{"sticky_cookie", c.StickyCookie, "cookie name"},
		{"override_header", c.OverrideHeader, "HTTP header name"},
		{"version_header", c.VersionHeader, "HTTP header name"},
	} {
		if h.val != "" && !isToken(h.val) {
			t.errs.add(t.at(h.key), "canary.%s: %q is not a valid %s", h.key, h.val, h.what)
		}
	}
}

// A Pi Zero has 512 MiB: the bounds keep the journal and the reports
// from taking a good part of it, or of a small SD card.
const (
	maxJournalRecords = 1000000
	maxBodyBytes      = 64 << 10
)

func checkJournal(j *Journal, t *table) {
	if j.Records < 0 || j.Records > maxJournalRecords {
		t.errs.add(t.at("records"), "journal.records: %d is out of range (want 0 for off, up to %d; about 20 bytes each, 256 at most)", j.Records, maxJournalRecords)
	}
	if j.FileMaxBytes < 64<<10 || j.FileMaxBytes > 1<<30 {
		t.errs.add(t.at("file_max_bytes"), "journal.file_max_bytes: %d is out of range (want 65536 to 1073741824 bytes)", j.FileMaxBytes)
	}
	if j.Bodies < 0 || j.Bodies > maxBodyBytes {
		t.errs.add(t.at("bodies"), "journal.bodies: %d is out of range (want 0 for off, up to %d bytes per request)", j.Bodies, maxBodyBytes)
	}
}

func checkIncidents(i *Incidents, t *table) {
	if i.Keep < 1 || i.Keep > 10000 {
		t.errs.add(t.at("keep"), "incidents.keep: %d is out of range (want 1 to 10000 reports)", i.Keep)
	}
	if i.MaxBytes < 1<<20 || i.MaxBytes > 1<<30 {
		t.errs.add(t.at("max_bytes"), "incidents.max_bytes: %d is out of range (want 1048576 to 1073741824 bytes)", i.MaxBytes)
	}
}

// checkGPIO checks every key of [gpio]: each names a pin, and no two share one.
func checkGPIO(c *Config, t *table) {
	usedBy := map[string]string{}
	for _, k := range keysOf("gpio") {
		pin := *k.field(c, 0).(*string)
		if pin == "" {
			continue
		}
		if !isHeaderPin(pin) {
			t.errs.add(t.at(k.Name), `gpio.%s: %q is not a header pin (want GPIO0 to GPIO27, or "" if not wired)`, k.Name, pin)
			continue
		}
		if other, taken := usedBy[pin]; taken {
			t.reportSharedPin(pin, other, k.Name)
			continue
		}
		usedBy[pin] = k.Name
	}
}

// reportSharedPin reports two parts wired to one pin at the key the user
// wrote: when the other part has its pin by default, its key is in no file
// and the message must say so.
func (t *table) reportSharedPin(pin, a, b string) {
	sa, sb := t.settings[a], t.settings[b]
	switch {
	case sa == nil:
		t.errs.add(sb.pos, `gpio.%s: %s is gpio.%s's default pin (set gpio.%s to another pin, or "" if not wired)`, b, pin, a, a)
	case sb == nil:
		t.errs.add(sa.pos, `gpio.%s: %s is gpio.%s's default pin (set gpio.%s to another pin, or "" if not wired)`, a, pin, b, b)
	case comparePos(sa.pos, sb.pos) < 0:
		t.errs.add(sb.pos, "gpio.%s: %s is already used by gpio.%s (%s)", b, pin, a, sa.pos)
	default:
		t.errs.add(sa.pos, "gpio.%s: %s is already used by gpio.%s (%s)", a, pin, b, sb.pos)
	}
}

// isHeaderPin reports whether name is a BCM GPIO on the 40-pin header, spelt
// as periph names it.
func isHeaderPin(name string) bool {
	num, ok := strings.CutPrefix(name, "GPIO")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(num)
	return err == nil && n >= 0 && n <= 27 && strconv.Itoa(n) == num
}

// checkHostPort checks a listen address; the error completes a sentence that
// starts with the address.
func checkFleet(f *Fleet, t *table, dir string) {
	f.Credentials = resolve(dir, f.Credentials)
	f.TokenFile = resolve(dir, f.TokenFile)
	f.CAFile = resolve(dir, f.CAFile)
	for _, s := range f.Servers {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
			t.errs.add(t.at("servers"), `fleet.servers: %q is not a NATS URL (want e.g. "nats://hub.example:4222")`, s)
			break
		}
	}
	if f.Name != "" && !fleetToken.MatchString(f.Name) {
		t.errs.add(t.at("name"), `fleet.name: %q: letters, digits, - and _ only (it is one token of a NATS subject)`, f.Name)
	}
	if !fleetToken.MatchString(f.Release) {
		t.errs.add(t.at("release"), `fleet.release: %q: letters, digits, - and _ only (it names the release's bucket)`, f.Release)
	}
	if f.Credentials != "" && f.TokenFile != "" {
		t.errs.add(t.at("token_file"), "fleet: credentials and token_file are two ways to log in to NATS: keep one")
	}
}

// fleetToken is what a member's name and a release may be: one token of a
// NATS subject, and a valid bucket name.
var fleetToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New(`is not host:port (want e.g. "127.0.0.1:8080", or ":8080" for every interface)`)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("has port %q (want a number from 0 to 65535)", port)
	}
	return nil
}

func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// isToken reports whether s is an RFC 9110 token, the syntax of header and
// cookie names.
func isToken(s string) bool {
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return s != ""
}
