package nginxconf

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// canaryd's bounds, as appliance/config checks them: the converted config
// must load.
const (
	maxWeight    = 1000
	maxUpstreams = 256
	adminPort    = 9090 // admin.listen's default port, on 127.0.0.1
)

// placeholder is canary.version until the user names the release.
const placeholder = "CHANGE-ME"

// peer is one server of the upstream block, on its way to an [[upstream]].
type peer struct {
	addr    string // as written, for --canary and messages
	key     string // host:port, lower case, for --canary
	loop    bool   // on loopback: it could take admin.listen's port
	name    string
	url     string
	weight  int
	down    string // the trailing comment of a server that is down
	extra   []setting
	canary  string // the --canary that named it
	leftOut string // why it is not an [[upstream]], or ""
	e       *entry
}

// upstream converts the service's upstream block, or the host:port its
// proxy_pass names, to peers.
func (c *conversion) upstream(svc *service) error {
	if svc.ups == nil {
		return c.direct(svc.pass)
	}
	ups := svc.ups
	head := "nginx: " + ups.String()
	scheme := "http"
	if svc.pass != nil {
		head += ", from " + svc.pass.d.String()
		scheme = svc.pass.scheme
	}
	c.upstreamComments = append(c.upstreamComments, head)
	prefix := entryName(ups.arg(0))
	n := 0
	for _, d := range ups.block {
		switch d.name {
		case "server":
			n++
			if err := c.server(d, fmt.Sprintf("%s-%d", prefix, n), scheme); err != nil {
				return err
			}
		case "keepalive":
			c.upstreamNotes.add(d.String(), "canaryd always keeps upstream connections alive; idle ones close after proxy.upstream_idle_timeout")
		case "keepalive_timeout":
			if err := c.timeout("upstream_idle_timeout", d, 0, " (in upstream "+ups.arg(0)+")"); err != nil {
				return err
			}
		case "keepalive_requests", "keepalive_time":
			c.upstreamNotes.add(d.String(), "canaryd keeps an upstream connection until it idles out (proxy.upstream_idle_timeout)")
		case "least_conn":
			c.upstreamNotes.add(d.String(), "canaryd splits by weight (smooth weighted round-robin, nginx's default), not by open connections")
		case "random":
			c.upstreamNotes.add(d.String(), "canaryd splits by weight in turn (smooth weighted round-robin, nginx's default), not at random")
		case "ip_hash":
			c.upstreamNotes.add(d.String(), stickyWhy)
		case "hash":
			c.hash(d)
		case "sticky":
			c.upstreamNotes.add(d.String(), "canaryd sets no cookie of its own; canary.sticky_cookie or sticky_header keep a user on one version by a cookie or header the service sets")
		case "zone":
			c.upstreamNotes.add(d.String(), "shared memory for nginx's worker processes: canaryd is one process")
		default:
			c.upstreamNotes.add(d.String(), why(d))
		}
	}
	return nil
}

// direct converts a proxy_pass to host:port, without an upstream block:
// one stable upstream.
func (c *conversion) direct(t *target) error {
	port := t.port
	switch {
	case port != "":
	case t.scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	name := entryName(t.host)
	if t.port != "" {
		name += "-" + t.port
	}
	addr := t.host
	if t.port != "" {
		addr = net.JoinHostPort(t.host, t.port)
	}
	c.upstreamComments = append(c.upstreamComments, "nginx: "+t.d.String()+": no upstream block, so one upstream of weight 1")
	_, err := c.peer(t.d, addr, t.scheme, t.host, port, name)
	return err
}

// server converts one server line of the upstream block.
func (c *conversion) server(d *directive, name, scheme string) error {
	addr := d.arg(0)
	switch {
	case strings.HasPrefix(addr, "unix:"):
		c.leftOut(d, addr, "a unix socket", "canaryd dials TCP only: have the service listen on host:port too")
		return nil
	case slices.Contains(d.params(), "backup"):
		c.leftOut(d, addr, "a backup server", "canaryd has no backup tier: every upstream takes its share at all times; on a rollback the stable upstreams take all traffic, and health_path keeps a dead one out of the rotation")
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = strings.Trim(addr, "[]"), "80"
	}
	p, err := c.peer(d, addr, scheme, host, port, name)
	if err != nil {
		return err
	}
	p.e.comments = []string{"nginx: " + d.String()}

	weight := ""
	for _, param := range d.params() {
		k, v, _ := strings.Cut(param, "=")
		switch k {
		case "weight":
			n, err := strconv.Atoi(v)
			switch {
			case err != nil || n < 1:
				return c.errorf(d.line, "server %s: %s: want a whole number, 1 or more", addr, param)
			case n > maxWeight:
				return c.errorf(d.line, "server %s: %s: canaryd's weights go up to %d; divide all the block's weights by a common factor", addr, param, maxWeight)
			}
			p.weight, weight = n, v
		case "max_fails":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.errorf(d.line, "server %s: %s: want a whole number, 0 or more", addr, param)
			}
			p.extra = append(p.extra, setting{key: "max_fails", value: strconv.Itoa(n)})
		case "fail_timeout", "slow_start":
			t, ok := parseTime(v)
			switch {
			case !ok:
				return c.errorf(d.line, "server %s: %s: not an nginx time (want e.g. 10s, 1m or 500ms)", addr, param)
			case k == "fail_timeout" && t == 0:
				p.e.notes.add(param, "canaryd's fail_timeout must be more than zero; left at its default, 10s")
			case k == "slow_start" && t != 0 && (t < time.Second || t > time.Hour):
				p.e.notes.add(param, `canaryd's slow_start is 1s to 1h, or "0s" for off; left out`)
			default:
				p.extra = append(p.extra, setting{key: k, value: duration(t)})
			}
		case "down":
			p.down = "down: out of the rotation, as in nginx"
		case "max_conns":
			p.e.notes.add(param, "no per-upstream connection limit in canaryd (proxy.max_connections bounds client connections)")
		case "resolve":
			p.e.notes.add(param, resolveWhy)
		default:
			p.e.notes.add(param, noEquivalent)
		}
	}
	if p.down != "" && weight != "" {
		p.down += "; weight " + weight + " when it comes back"
	}
	return nil
}

// peer adds an upstream server at host:port, named name.
func (c *conversion) peer(d *directive, addr, scheme, host, port, name string) (*peer, error) {
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, port))
	if err != nil || host == "" || !isPort(port) || u.Hostname() != host || u.Path != "" || u.User != nil {
		return nil, c.errorf(d.line, "server %q: not an address canaryd can use (want host:port, e.g. 10.0.0.2:8080)", addr)
	}
	p := &peer{
		addr:   addr,
		key:    net.JoinHostPort(strings.ToLower(host), port),
		loop:   host == "127.0.0.1" || strings.EqualFold(host, "localhost"),
		name:   name,
		url:    u.String(),
		weight: 1,
		e:      &entry{},
	}
	c.peers = append(c.peers, p)
	c.entries = append(c.entries, p.e)
	return p, nil
}

// leftOut adds a server canaryd has no equivalent for: a comment only.
func (c *conversion) leftOut(d *directive, addr, what, why string) {
	p := &peer{addr: addr, key: addrKey(addr), leftOut: what, e: &entry{}}
	p.e.notes.add(d.String(), "left out: "+why)
	c.peers = append(c.peers, p)
	c.entries = append(c.entries, p.e)
}

// hash converts a hash on a header or a cookie to canary's sticky key.
func (c *conversion) hash(d *directive) {
	key, name := stickyKey(d.arg(0))
	if key == "" {
		c.upstreamNotes.add(d.String(), stickyWhy)
		return
	}
	c.sticky = append(c.sticky, setting{key: key, value: quote(name), comments: []string{
		"nginx: " + d.String(),
		"one user stays on one version: nginx kept each user on one server; canaryd keeps them on the canary or on the stable upstreams, round-robin among those",
	}})
}

// stickyKey maps nginx's $http_x_user_id to sticky_header "X-User-ID" and
// $cookie_uid to sticky_cookie "uid"; any other key maps to nothing.
func stickyKey(v string) (key, name string) {
	v, ok := strings.CutPrefix(v, "$")
	if !ok {
		return "", ""
	}
	if inner, ok := strings.CutPrefix(v, "{"); ok {
		v, _ = strings.CutSuffix(inner, "}")
	}
	if h, ok := strings.CutPrefix(v, "http_"); ok && isVarName(h) {
		return "sticky_header", headerName(h)
	}
	if ck, ok := strings.CutPrefix(v, "cookie_"); ok && isVarName(ck) {
		return "sticky_cookie", ck
	}
	return "", ""
}

func isVarName(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}

// headerName spells the header of nginx's $http_ variable as people do:
// x_user_id is X-User-ID (a part of one or two letters is an initialism).
func headerName(v string) string {
	parts := strings.Split(strings.ToLower(v), "_")
	for i, p := range parts {
		if len(p) <= 2 {
			parts[i] = strings.ToUpper(p)
		} else {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// entryName makes an upstream name canaryd accepts out of an nginx name
// or a host: letters, digits, '.', '_' and '-', any other run of
// characters one '-' ("2001:db8::5" is "2001-db8-5").
func entryName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	if name := strings.Trim(b.String(), "-"); strings.Trim(name, ".") != "" {
		return name
	}
	return "upstream"
}

// addrKey is host:port of an address as --canary or a server line gives
// it, port 80 when left out, for comparing the two.
func addrKey(addr string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = strings.Trim(addr, "[]"), "80"
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// roles marks the servers --canary names as canaries, the others stable,
// and writes the [[upstream]] entries and [canary].
func (c *conversion) roles() error {
	var usable, canaries []*peer
	for _, p := range c.peers {
		if p.leftOut == "" {
			usable = append(usable, p)
		}
	}
	switch {
	case len(usable) == 0:
		return c.errorf(0, "no server canaryd can use: unix sockets and backup servers have no equivalent (want a server at host:port)")
	case len(usable) > maxUpstreams:
		return c.errorf(0, "%d servers: canaryd takes up to %d", len(usable), maxUpstreams)
	}
	for _, a := range c.opts.Canary {
		found := false
		for _, p := range c.peers {
			if p.addr != a && p.key != addrKey(a) {
				continue
			}
			if p.leftOut != "" {
				return c.errorf(0, "--canary %s names %s, which canaryd leaves out", a, p.leftOut)
			}
			if p.canary == "" {
				canaries = append(canaries, p)
			}
			p.canary, found = a, true
		}
		if !found {
			addrs := make([]string, len(usable))
			for i, p := range usable {
				addrs[i] = p.addr
			}
			return c.errorf(0, "--canary %s matches no server; the servers are %s", a, strings.Join(addrs, ", "))
		}
	}
	stable := false
	for _, p := range usable {
		stable = stable || (p.canary == "" && p.down == "" && p.weight > 0)
	}
	if len(canaries) > 0 && !stable {
		return c.errorf(0, "no stable server is left: every server is a --canary or down, and canaryd needs a stable upstream taking traffic to roll back to")
	}

	for _, p := range usable {
		weight := setting{key: "weight", value: strconv.Itoa(p.weight)}
		if p.down != "" {
			weight.value, weight.trailing = "0", p.down
		}
		role := setting{key: "role", value: quote("stable")}
		if p.canary != "" {
			role.value, role.trailing = quote("canary"), "--canary "+p.canary
		}
		p.e.settings = append([]setting{
			{key: "name", value: quote(p.name)},
			{key: "url", value: quote(p.url)},
			weight,
			role,
		}, p.extra...)
	}

	if len(canaries) > 0 {
		c.canary = append(c.canary, setting{key: "version", value: quote(placeholder), comments: []string{
			"Set version to the release the canary servers run (a tag, a build) before each release: a new value re-arms the canary after a rollback.",
		}})
	} else {
		c.topComments = append(c.topComments, canaryHint(usable))
	}
	c.canary = append(c.canary, c.sticky...)
	c.adminListen(usable)
	return nil
}

// canaryHint tells how to name the canary, when no --canary did.
func canaryHint(usable []*peer) string {
	if len(usable) == 1 {
		return `One server, stable. A canary needs a server of its own: add it to the upstream block and convert again with --canary ADDR naming it, or add an [[upstream]] with role = "canary" and a [canary] version.`
	}
	return fmt.Sprintf(`All servers are stable. To release a canary, convert again naming its server, e.g. --canary %s, or set its role = "canary" below and add a [canary] version.`, usable[len(usable)-1].addr)
}

// adminListen moves the status page off 127.0.0.1:9090, its default, when
// an upstream is there: canaryd refuses to proxy to its own admin side.
func (c *conversion) adminListen(usable []*peer) {
	taken := map[string]string{}
	for _, p := range usable {
		if p.loop {
			taken[portOf(p.key)] = p.name
		}
	}
	who, ok := taken[strconv.Itoa(adminPort)]
	if !ok {
		return
	}
	port := adminPort + 1
	for taken[strconv.Itoa(port)] != "" {
		port++
	}
	c.admin = append(c.admin, setting{
		key:      "listen",
		value:    quote("127.0.0.1:" + strconv.Itoa(port)),
		comments: []string{fmt.Sprintf("the status page's default address, 127.0.0.1:%d, is upstream %s's", adminPort, who)},
	})
}
