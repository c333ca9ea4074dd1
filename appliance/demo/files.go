package demo

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/canary-pi/canary-pi/appliance/atomicfile"
)

// The demo's config directory is two files. ConfigFile is the user's:
// written on a first run, never again. BackendsFile holds what may move
// from one run to the next (where the backends, the socket and the status
// page are): Start sets those addresses in it at every run and keeps the
// rest of it, so that an edited weight survives.
const (
	ConfigFile   = "canaryd.toml"
	BackendsFile = "00-demo-backends.toml"
)

const configText = `# canaryd -demo's config. Edit it: a change applies within a second, and
# canaryctl status says so when it does not validate. Every *.toml file in
# this directory is read; the two backends and their weights are in
# ` + BackendsFile + ` beside this one.

[proxy]
listen = "127.0.0.1:8080"        # the public side (canaryd -listen overrides it)

[canary]
version = "pong-v2"              # the release; a new value re-arms the canary after a rollback
auto_rollback = false            # true: a red verdict rolls back by itself
# min_requests = 20              # fewer canary requests: no verdict yet
# latency_ratio = 1.5            # slower than this many times the stable's p90 counts as slow; 0 off
# steps = [10, 25, 50]           # a progressive rollout: percent of traffic to the canary
# step_interval = "1m"           # time at each step
# sticky_header = "X-User-ID"    # one user stays on one version
# override_header = "X-Canary"   # "always" or "never", for testers
`

// backendsText is BackendsFile as a first run writes it; Start sets its
// addresses.
const backendsText = `# canaryd -demo's backends, and where canaryctl and the status page reach
# canaryd. At every start canaryd -demo sets the addresses below (each url,
# admin.socket, admin.listen) to where they are that time; the rest is
# yours to edit, and stays: weight, max_fails, health_path, slow_start.
# Delete this file to have it written afresh.

[admin]
socket = ""
listen = ""

[[upstream]]
name = "pong-v1"
url = ""
weight = 10
role = "stable"
# health_path = "/ping"          # an active health check: no traffic until it answers
# slow_start = "30s"             # a recovered backend ramps up to its weight

[[upstream]]
name = "pong-v2"
url = ""
weight = 5
role = "canary"
`

// Files are the config directory a first run writes, by file name, with
// the backends and the status page at their usual addresses.
func Files(socket string) map[string]string {
	urls := map[string]string{}
	for _, b := range Backends {
		urls[b.Name] = "http://" + b.Listen
	}
	return map[string]string{
		ConfigFile:   configText,
		BackendsFile: setAddresses(backendsText, urls, map[string]string{"socket": socket, "listen": AdminListen}),
	}
}

// writeConfig writes what is missing from the config directory, and this
// run's addresses.
func (d *Demo) writeConfig() error {
	if _, err := os.Lstat(d.Config); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.Write(d.Config, []byte(configText), 0o644); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	path := filepath.Join(d.ConfigDir, BackendsFile)
	old, err := os.ReadFile(path)
	text := string(old)
	if errors.Is(err, fs.ErrNotExist) {
		text = backendsText
	} else if err != nil {
		return err
	}
	urls := map[string]string{}
	for name, addr := range d.Addrs {
		urls[name] = "http://" + addr
	}
	admin := map[string]string{"socket": d.Socket, "listen": AdminListen}
	if d.AdminTaken {
		admin["listen"] = "127.0.0.1:0" // canaryd picks a free port, and the banner shows it
	}
	if text = setAddresses(text, urls, admin); text == string(old) {
		return nil
	}
	return atomicfile.Write(path, []byte(text), 0o644)
}

var (
	tableLine = regexp.MustCompile(`^\s*\[`)
	// keyLine is KEY = "VALUE" # the rest: $1 is up to the value, $2 the
	// value with its quotes, $3 the rest.
	keyLine = regexp.MustCompile(`^(\s*([A-Za-z0-9_-]+)\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')(.*)$`)
)

// setAddresses returns text, a TOML config, with the url of each
// [[upstream]] named in urls, and the [admin] keys in admin, set to their
// values. It works line by line so that everything else stays as the
// user wrote it, comments too; a key that is missing is added, and so is
// an [admin] table.
func setAddresses(text string, urls, admin map[string]string) string {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	// Tables, each from its header line to the next: a [[upstream]]'s
	// name may come after its url.
	var tables [][]string
	for i, line := range lines {
		if i == 0 || tableLine.MatchString(line) {
			tables = append(tables, nil)
		}
		tables[len(tables)-1] = append(tables[len(tables)-1], line)
	}
	var out strings.Builder
	sawAdmin := false
	for _, t := range tables {
		switch strings.Join(strings.Fields(strings.TrimSpace(strings.SplitN(t[0], "#", 2)[0])), "") {
		case "[admin]":
			sawAdmin = true
			t = setKeys(t, admin)
		case "[[upstream]]":
			if url, ok := urls[value(t, "name")]; ok {
				t = setKeys(t, map[string]string{"url": url})
			}
		}
		for _, line := range t {
			out.WriteString(line)
		}
	}
	if !sawAdmin {
		if s := out.String(); s != "" && !strings.HasSuffix(s, "\n") {
			out.WriteString("\n")
		}
		out.WriteString("\n")
		out.WriteString(strings.Join(setKeys([]string{"[admin]\n"}, admin), ""))
	}
	return out.String()
}

// value is the string value of key in table t, "" when it has none.
func value(t []string, key string) string {
	for _, line := range t[1:] {
		if m := keyLine.FindStringSubmatch(strings.TrimRight(line, "\r\n")); m != nil && m[2] == key {
			return strings.Trim(m[3], `"'`)
		}
	}
	return ""
}

// setKeys sets each key of values in table t, whose first line is its
// header, and adds the keys it lacks after the header, in name order.
func setKeys(t []string, values map[string]string) []string {
	t = append([]string(nil), t...)
	set := map[string]bool{}
	for i, line := range t[1:] {
		bare := strings.TrimRight(line, "\r\n")
		m := keyLine.FindStringSubmatch(bare)
		if m == nil {
			continue
		}
		if v, ok := values[m[2]]; ok && !set[m[2]] {
			t[i+1] = fmt.Sprintf("%s%q%s%s", m[1], v, m[4], line[len(bare):])
			set[m[2]] = true
		}
	}
	var missing []string
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !set[k] {
			missing = append(missing, fmt.Sprintf("%s = %q\n", k, values[k]))
		}
	}
	if len(missing) > 0 && !strings.HasSuffix(t[0], "\n") {
		t[0] += "\n"
	}
	return append(t[:1], append(missing, t[1:]...)...)
}
