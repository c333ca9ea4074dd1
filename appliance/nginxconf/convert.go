package nginxconf

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// conversion is one nginx config on its way to a canaryd.toml.
type conversion struct {
	file string
	opts Options

	// The levels nginx inherits settings through, from the outside in:
	// the http block (a snippet's top level), the server block and the
	// location of the service; nil where there is none.
	http, srv, loc []*directive

	topComments      []string
	topNotes         notes
	proxy            []setting
	proxyNotes       notes
	admin            []setting
	upstreamComments []string
	upstreamNotes    notes
	entries          []*entry
	peers            []*peer
	sticky           []setting
	canary           []setting
}

// service is what the one canaryd will serve: the location of a server
// block and the upstream its proxy_pass names.
type service struct {
	srv, loc *directive // nil when no server block proxies to ups
	pass     *target    // the location's proxy_pass
	ups      *directive // the upstream block; nil for a proxy_pass to host:port
}

// target is a proxy_pass's URL.
type target struct {
	d                       *directive
	scheme, host, port, uri string // port "" when not written
}

// inherited are the directives a location inherits from its server and
// the http block, which the conversion reads at the level that sets them.
var inherited = []string{
	"proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout",
	"keepalive_timeout", "client_header_timeout", "access_log", "proxy_set_header",
}

func (c *conversion) convert(top []*directive) error {
	// A whole nginx.conf has the service in its http block; a conf.d
	// snippet has it at the top.
	scope, main := top, []*directive(nil)
	if hs := blocks(top, "http"); len(hs) > 0 {
		scope, main = nil, top
		for _, h := range hs {
			scope = append(scope, h.block...)
		}
	}
	svc, err := c.choose(scope)
	if err != nil {
		return err
	}
	c.http = scope
	if svc.srv != nil {
		c.srv, c.loc = svc.srv.block, svc.loc.block
	}

	for _, d := range main {
		if d.name != "http" {
			c.topNotes.add(d.String(), whyMain(d))
		}
	}
	for _, d := range scope {
		switch {
		case d.name == "upstream" && d.isBlock:
			if d != svc.ups {
				c.topNotes.add(d.String(), fmt.Sprintf("left out: one canaryd serves one service; convert it with --upstream %s for another canaryd", d.arg(0)))
			}
		case d.name == "server" && d.isBlock:
			if d != svc.srv {
				c.topNotes.add(describeServer(d), otherServer(d, svc))
			}
		case !slices.Contains(inherited, d.name):
			c.proxyNotes.add(d.String(), why(d))
		}
	}
	// The listen directives are one setting, and their notes come where
	// the first one is.
	listened := false
	for _, d := range c.srv {
		switch {
		case d.name == "listen":
			if !listened {
				c.listen(svc)
				listened = true
			}
		case d.name == "location":
			if d != svc.loc {
				c.proxyNotes.add(d.String(), locationWhy)
			}
		case !slices.Contains(inherited, d.name):
			c.proxyNotes.add(d.String(), why(d))
		}
	}
	for _, d := range c.loc {
		switch {
		case d.name == "proxy_pass":
		case d.name == "location":
			c.proxyNotes.add(d.String(), locationWhy)
		case !slices.Contains(inherited, d.name):
			c.proxyNotes.add(d.String(), why(d))
		}
	}

	if !listened {
		c.listen(svc)
	}
	c.location(svc)
	if err := c.inherit(); err != nil {
		return err
	}
	if err := c.upstream(svc); err != nil {
		return err
	}
	return c.roles()
}

// whyMain says why a directive outside the http block does not carry over.
func whyMain(d *directive) string {
	switch d.name {
	case "stream":
		return "TCP and UDP proxying: canaryd proxies HTTP only"
	case "mail":
		return "mail proxying: canaryd proxies HTTP only"
	}
	return why(d)
}

// choose finds the service: the upstream that --upstream names, or that
// a "location /" proxies to, or the only one; or else a proxy_pass
// straight to host:port.
func (c *conversion) choose(scope []*directive) (*service, error) {
	upstreams := blocks(scope, "upstream")
	var candidates []*service
	var variables []*directive
	for _, srv := range blocks(scope, "server") {
		for _, loc := range blocks(srv.block, "location") {
			ps := named(loc.block, "proxy_pass")
			if len(ps) == 0 {
				continue
			}
			t := parsePass(ps[len(ps)-1])
			if t == nil {
				variables = append(variables, ps[len(ps)-1])
				continue
			}
			svc := &service{srv: srv, loc: loc, pass: t}
			if t.port == "" {
				svc.ups = blockNamed(upstreams, t.host)
			}
			candidates = append(candidates, svc)
		}
	}

	if name := c.opts.Upstream; name != "" {
		ups := blockNamed(upstreams, name)
		if ups == nil {
			return nil, c.errorf(0, "--upstream %s: no upstream block of that name (the file has %s)", name, listNames(upstreams))
		}
		candidates = slices.DeleteFunc(candidates, func(s *service) bool { return s.ups != ups })
		if len(candidates) == 0 {
			return &service{ups: ups}, nil
		}
	}
	// A "location /" is the whole service; any other proxies part of it.
	for _, svc := range candidates {
		if wholeService(svc.loc) {
			return svc, nil
		}
	}
	switch {
	case len(candidates) > 0:
		return candidates[0], nil
	case len(upstreams) == 1:
		return &service{ups: upstreams[0]}, nil
	case len(upstreams) > 1:
		return nil, c.errorf(0, "several upstream blocks (%s) and no location proxies to one: choose one with --upstream NAME", listNames(upstreams))
	case len(variables) > 0:
		return nil, c.errorf(variables[0].line, "%q names its upstream with a variable: add the upstream blocks to this file and choose one with --upstream NAME", variables[0].String())
	}
	msg := `nothing to convert: no upstream block and no location with proxy_pass (canaryd proxies to upstreams: want "upstream NAME { ... }" or "proxy_pass http://host:port")`
	for _, inc := range named(scope, "include") {
		if includeWhy(inc.arg(0)) == includeOther {
			msg += fmt.Sprintf("; they may be in a file this one includes (%s): convert that one", inc.arg(0))
			break
		}
	}
	return nil, c.errorf(0, "%s", msg)
}

// parsePass reads a proxy_pass to http or https; nil for a unix socket,
// a variable or another scheme.
func parsePass(d *directive) *target {
	scheme, rest, ok := strings.Cut(d.arg(0), "://")
	if !ok || (scheme != "http" && scheme != "https") || strings.Contains(rest, "$") || strings.HasPrefix(rest, "unix:") {
		return nil
	}
	hostport, uri := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, uri = rest[:i], rest[i:]
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), ""
	}
	if host == "" {
		return nil
	}
	return &target{d: d, scheme: scheme, host: host, port: port, uri: uri}
}

// wholeService reports whether a location takes every path: "location /".
func wholeService(loc *directive) bool {
	return slices.Equal(loc.args, []string{"/"}) || slices.Equal(loc.args, []string{"^~", "/"})
}

// describeServer names a server block by its listen and server_name.
func describeServer(srv *directive) string {
	var parts []string
	for _, d := range srv.block {
		if d.name == "listen" || d.name == "server_name" {
			parts = append(parts, strings.Join(d.raw, " "))
		}
	}
	if len(parts) == 0 {
		return "server { ... }"
	}
	return "server { " + strings.Join(parts, "; ") + "; ... }"
}

// otherServer says why a server block is left out, and what to do with
// what it serves.
func otherServer(srv *directive, svc *service) string {
	const why = "left out: one canaryd serves one service"
	for _, loc := range blocks(srv.block, "location") {
		ps := named(loc.block, "proxy_pass")
		if len(ps) == 0 {
			continue
		}
		t := parsePass(ps[len(ps)-1])
		switch {
		case t == nil:
		case svc.ups != nil && t.port == "" && t.host == svc.ups.arg(0) && listensTLS(srv):
			return "the same service over TLS, which canaryd does not serve yet: keep this server (or a load balancer) in front to terminate TLS, proxying to canaryd's proxy.listen"
		case t.port == "" && (svc.ups == nil || t.host != svc.ups.arg(0)):
			return fmt.Sprintf("%s; it proxies to %s: convert it with --upstream %s for another canaryd", why, t.host, t.host)
		}
	}
	return why
}

func listensTLS(srv *directive) bool {
	for _, l := range named(srv.block, "listen") {
		if slices.Contains(l.params(), "ssl") || slices.Contains(l.params(), "quic") {
			return true
		}
	}
	return false
}

// listen converts the server block's listen directives to proxy.listen.
func (c *conversion) listen(svc *service) {
	var ls []*directive
	if svc.srv != nil {
		ls = named(svc.srv.block, "listen")
	}
	if len(ls) == 0 {
		why := "nginx: a server without listen listens on port 80"
		if svc.srv == nil {
			why = fmt.Sprintf("no server block proxies to upstream %s: port 80, as nginx's default; set the address clients use", svc.ups.arg(0))
		}
		c.proxy = append(c.proxy, setting{key: "listen", value: quote(":80"), comments: []string{why}})
		return
	}

	type plain struct {
		d    *directive
		addr string
	}
	var plains []plain
	tls := false
	for _, l := range ls {
		addr, ok := listenAddr(l.arg(0))
		params := l.params()
		switch {
		case !ok:
			c.proxyNotes.add(l.String(), "canaryd listens on a TCP host:port, with a port from 1 to 65535")
			continue
		case slices.Contains(params, "ssl") || slices.Contains(params, "quic"):
			c.proxyNotes.add(l.String(), tlsWhy)
			tls = true
			continue
		}
		for _, p := range params {
			switch {
			case p == "default_server" || p == "default":
				// One service per canaryd: it is everyone's default.
			case p == "http2":
				c.proxyNotes.add(l.String(), "canaryd speaks HTTP/1.1 to clients (HTTP/2 comes with TLS, in front of it for now)")
			default:
				c.proxyNotes.add(fmt.Sprintf("%s (%s)", l.String(), p), noEquivalent)
			}
		}
		plains = append(plains, plain{l, addr})
	}
	switch {
	case len(plains) == 0 && tls:
		c.proxy = append(c.proxy, setting{key: "listen", value: quote("127.0.0.1:8080"), comments: []string{
			"nginx listens with TLS only: canaryd serves plain HTTP here, for the TLS terminator in front of it to proxy to",
		}})
		return
	case len(plains) == 0:
		c.proxy = append(c.proxy, setting{key: "listen", value: quote(":80"), comments: []string{
			"no listen canaryd can use: port 80, as nginx's default; set the address clients use",
		}})
		return
	}

	// nginx needs "listen 80" and "listen [::]:80" for both IP versions;
	// canaryd's ":80" is both.
	first := plains[0]
	addr := first.addr
	comments := []string{"nginx: " + first.d.String()}
	for _, p := range plains[1:] {
		if port, ok := twins(addr, p.addr); ok {
			addr = ":" + port
			comments = append(comments, "nginx: "+p.d.String())
			continue
		}
		c.proxyNotes.add(p.d.String(), "canaryd listens on one address, proxy.listen")
	}
	if len(comments) > 1 {
		comments = append(comments, `canaryd's ":`+portOf(addr)+`" takes IPv4 and IPv6 both`)
	}
	c.proxy = append(c.proxy, setting{key: "listen", value: quote(addr), comments: comments})
}

// listenAddr reads a listen address as canaryd's host:port: "80" is
// ":80", "*:80" is ":80", a host alone is port 80. ok is false for a unix
// socket or a port out of range.
func listenAddr(s string) (string, bool) {
	if strings.HasPrefix(s, "unix:") {
		return "", false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if isPort(s) {
			host, port = "", s
		} else {
			host, port = strings.Trim(s, "[]"), "80"
		}
	}
	if host == "*" {
		host = ""
	}
	if !isPort(port) {
		return "", false
	}
	return net.JoinHostPort(host, port), true
}

// twins reports whether a and b are every address of one port, IPv4 and
// IPv6, and returns the port.
func twins(a, b string) (string, bool) {
	ah, ap, _ := net.SplitHostPort(a)
	bh, bp, _ := net.SplitHostPort(b)
	wild := func(h string) bool { return h == "" || h == "::" }
	return ap, ap == bp && wild(ah) && wild(bh) && ah != bh
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 1<<16 && strconv.Itoa(n) == s
}

// location notes what the service's location does that canaryd does not:
// serve a part of the paths, or rewrite them.
func (c *conversion) location(svc *service) {
	if svc.loc == nil {
		return
	}
	if !wholeService(svc.loc) {
		c.proxyNotes.add(svc.loc.String(), "canaryd proxies every path, not only these: "+locationWhy)
	}
	if uri := svc.pass.uri; uri != "" && !(uri == "/" && wholeService(svc.loc)) {
		c.proxyNotes.add(svc.pass.d.String(), fmt.Sprintf("nginx puts %s in place of the location's path; canaryd passes each request's path as it came", uri))
	}
}

// inherit converts what the location inherits: the timeouts, the access
// log, the headers set toward the upstream.
func (c *conversion) inherit() error {
	if ds := c.effective("proxy_connect_timeout"); ds != nil {
		if err := c.timeout("connect_timeout", ds[len(ds)-1], 0, ""); err != nil {
			return err
		}
	}
	if err := c.readTimeout(); err != nil {
		return err
	}
	if ds := c.effective("keepalive_timeout"); ds != nil {
		if err := c.timeout("idle_timeout", ds[len(ds)-1], 0, ""); err != nil {
			return err
		}
	}
	if ds := c.effective("client_header_timeout"); ds != nil {
		if err := c.timeout("client_header_timeout", ds[len(ds)-1], 100*time.Millisecond, ""); err != nil {
			return err
		}
	}
	if ds := c.effective("access_log"); ds != nil {
		on := slices.ContainsFunc(ds, func(d *directive) bool { return d.arg(0) != "off" })
		s := setting{key: "access_log", value: strconv.FormatBool(on)}
		for _, d := range ds {
			s.comments = append(s.comments, "nginx: "+d.String())
		}
		if on {
			s.comments = append(s.comments, "canaryd writes one journald entry per request (CLIENT, METHOD, PATH, STATUS, UPSTREAM, REQUEST_ID, DURATION_MS), not nginx's combined format to a file")
		}
		c.proxy = append(c.proxy, s)
	}
	for _, d := range c.effective("proxy_set_header") {
		c.proxyNotes.add(d.String(), headerWhy(d.arg(0)))
	}
	return nil
}

// timeout converts d's nginx time to a [proxy] key; below least, or zero,
// has no equivalent. where says where d is, when its name does not.
func (c *conversion) timeout(key string, d *directive, least time.Duration, where string) error {
	t, err := c.time(d, d.arg(0))
	if err != nil {
		return err
	}
	switch {
	case t == 0:
		c.proxyNotes.add(d.String(), fmt.Sprintf("proxy.%s must be more than zero; left at its default", key))
		return nil
	case t < least:
		c.proxyNotes.add(d.String(), fmt.Sprintf("proxy.%s must be %s or more; left at its default", key, strings.Trim(duration(least), `"`)))
		return nil
	}
	c.proxy = append(c.proxy, setting{key: key, value: duration(t), comments: []string{"nginx: " + d.String() + where}})
	return nil
}

// readTimeout converts proxy_read_timeout and proxy_send_timeout to
// header_timeout, which bounds both the reads from an upstream and the
// writes to it: the longer of the two, when both are set, so that neither
// is cut short.
func (c *conversion) readTimeout() error {
	var longest time.Duration
	var set []*directive
	for _, name := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		ds := c.effective(name)
		if ds == nil {
			continue
		}
		d := ds[len(ds)-1]
		t, err := c.time(d, d.arg(0))
		if err != nil {
			return err
		}
		set = append(set, d)
		longest = max(longest, t)
	}
	if set == nil {
		return nil
	}
	if longest == 0 {
		c.proxyNotes.add(set[0].String(), "proxy.header_timeout must be more than zero; left at its default")
		return nil
	}
	s := setting{key: "header_timeout", value: duration(longest)}
	for _, d := range set {
		s.comments = append(s.comments, "nginx: "+d.String())
	}
	why := "header_timeout bounds each read from an upstream and each write to it, as proxy_read_timeout and proxy_send_timeout do"
	if len(set) == 2 {
		why += ": the longer of the two"
	}
	s.comments = append(s.comments, why)
	c.proxy = append(c.proxy, s)
	return nil
}

// time reads an nginx time argument of d.
func (c *conversion) time(d *directive, s string) (time.Duration, error) {
	t, ok := parseTime(s)
	if !ok {
		return 0, c.errorf(d.line, "%s: %q is not an nginx time (want e.g. 10s, 1m or 500ms)", d.name, s)
	}
	return t, nil
}

// effective returns the directives named name that apply to the service's
// location: those of the innermost level that has any, as nginx inherits.
func (c *conversion) effective(name string) []*directive {
	for _, level := range [][]*directive{c.loc, c.srv, c.http} {
		if ds := named(level, name); len(ds) > 0 {
			return ds
		}
	}
	return nil
}

func (c *conversion) errorf(line int, format string, args ...any) error {
	return &Error{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// named returns the directives called name in ds that are not blocks.
func named(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name && !d.isBlock {
			out = append(out, d)
		}
	}
	return out
}

// blocks returns the blocks called name in ds.
func blocks(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name && d.isBlock {
			out = append(out, d)
		}
	}
	return out
}

// blockNamed returns the block whose first argument is name, or nil.
func blockNamed(bs []*directive, name string) *directive {
	for _, b := range bs {
		if b.arg(0) == name {
			return b
		}
	}
	return nil
}

// listNames lists the blocks' names: "a, b", or "none".
func listNames(bs []*directive) string {
	if len(bs) == 0 {
		return "none"
	}
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.arg(0)
	}
	return strings.Join(names, ", ")
}

func (c *conversion) result() *Result {
	r := &Result{TOML: c.render()}
	all := []notes{c.topNotes, c.proxyNotes, c.upstreamNotes}
	for _, e := range c.entries {
		all = append(all, e.notes)
	}
	for _, ns := range all {
		for _, n := range ns {
			r.Notes = append(r.Notes, n.String())
		}
	}
	return r
}
