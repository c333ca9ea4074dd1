package main

// canaryd -demo: the flags it takes, the directories it uses, and what it
// tells a newcomer.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/canary-pi/canary-pi/appliance/daemon"
	"github.com/canary-pi/canary-pi/appliance/demo"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// checkDemoFlags refuses, in one line, the flags -demo cannot honour, and
// a -listen that is not host:port, as the bad flag it is, before the demo
// writes a file or binds a port.
func checkDemoFlags(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case err != nil:
		case f.Name == "config-dir":
			err = errors.New("-demo writes a config of its own and cannot use -config-dir; to keep the demo's config and state across runs, use -demo -state-dir DIR (the config is then in DIR/config)")
		case f.Name == "check-config" || f.Name == "import-config" || f.Name == "demo-backend":
			err = fmt.Errorf("-demo and -%s are different runs of canaryd: give one of them", f.Name)
		case f.Name == "listen":
			err = checkListen(f.Value.String())
		}
	})
	return err
}

// checkListen checks -listen as config.Load checks proxy.listen.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("-listen %q: want host:port, such as 127.0.0.1:8080", addr)
	}
	return nil
}

// startDemo starts the demo's backends and writes its config, in the
// user's demo place or in -state-dir when given, and points opts at them.
func startDemo(fs *flag.FlagSet, opts *daemon.Options) (*demo.Demo, error) {
	// `make demo | tee log` and Ctrl-C: the terminal's SIGINT ends tee
	// too, and a write to the pipe then would kill canaryd with SIGPIPE
	// before it removes its files. Ignored, the write fails instead.
	signal.Ignore(syscall.SIGPIPE)
	place, err := demo.Place()
	if err != nil {
		return nil, err
	}
	o := demo.Options{Place: place}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "state-dir" {
			o.Dir, err = filepath.Abs(opts.StateDir)
		}
	})
	if err != nil {
		return nil, err
	}
	dm, err := demo.Start(o)
	if err != nil {
		return nil, err
	}
	opts.ConfigDir, opts.StateDir = dm.ConfigDir, dm.StateDir
	if opts.GPIO == "auto" {
		opts.GPIO = "sim"
	}
	return dm, nil
}

// printDemoBanner tells a newcomer, top to bottom, what runs where, what
// to type and what to edit. Writes may fail (a closed pipe): the demo
// runs on.
func printDemoBanner(w io.Writer, d *daemon.Daemon, dm *demo.Demo) {
	ctl, proxy := canaryctlPath(), d.ProxyAddr()
	st := d.Status()
	var ups []string
	for _, u := range st.Upstreams {
		ups = append(ups, fmt.Sprintf("%s (%s, weight %d)", u.Name, u.Role, u.Weight))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "canaryd demo: %s behind http://%s\n", strings.Join(ups, " and "), proxy)
	if dm.AdminTaken && d.AdminAddr() != "" {
		fmt.Fprintf(&b, "  %s is taken; the status page is on http://%s/\n", demo.AdminListen, d.AdminAddr())
	}
	for _, t := range dm.Taken {
		fmt.Fprintf(&b, "  %s is taken; %s serves on %s\n", t.Wanted, t.Name, t.Got)
	}
	if !dm.Temporary && (st.State == state.RolledBack || st.State == state.Promoted) {
		fmt.Fprintf(&b, "  %s, as the last run left it (%s status says why)\n", st.State, ctl)
	}
	fmt.Fprintf(&b, `
  try it:       curl http://%[1]s/ping
                for i in $(seq 15); do curl -s http://%[1]s/ping; echo; done
`, proxy)
	if a := d.AdminAddr(); a != "" {
		fmt.Fprintf(&b, "  status page:  http://%s/   (and /metrics for Prometheus)\n", a)
	}
	fmt.Fprintf(&b, `  config:       %s   (the backends' weights: %s)
                edit it, and the change applies within a second
  canaryctl:    export CANARYD_SOCKET=%s
                %[4]s status
                %[4]s rollback    (or: button, resume, promote)
`, dm.Config, demo.BackendsFile, shellQuote(d.Socket()), ctl)

	fault := func(name, query string) string {
		return fmt.Sprintf("curl -X POST 'http://%s/demo/fault%s'", dm.Addrs[name], query)
	}
	fmt.Fprintf(&b, `
Watch the verdict: keep some traffic going (20 requests a second) in another terminal,
                while sleep 0.05; do curl -s -o /dev/null http://%s/ping; done
  then make only pong-v2 fail 30%% of its requests, and the canary light turns red:
                %s
  or answer four times slower:  %s
  or make both fail alike: the light stays green, a shared failure, not the canary's:
                %s; %s
  back to healthy:  %s; %s   (then %s resume)

`, proxy, fault("pong-v2", "?errors=0.3"), fault("pong-v2", "?slower=4"),
		fault("pong-v1", "?errors=0.6"), fault("pong-v2", "?errors=0.6"),
		fault("pong-v1", ""), fault("pong-v2", ""), ctl)
	if dm.Temporary {
		b.WriteString("Ctrl-C stops the demo and removes its config and state (-state-dir DIR keeps them).\n")
	} else {
		fmt.Fprintf(&b, "Ctrl-C stops the demo; %s keeps its config and state for the next run.\n", dm.Dir)
	}
	io.WriteString(w, b.String())
}

// printDemoFarewell says what stopping leaves behind; it is written before
// the demo's Close, and may fail as the banner may.
func printDemoFarewell(w io.Writer, dm *demo.Demo) {
	if dm.Temporary {
		fmt.Fprintf(w, "canaryd demo stopping: removing its config and state from %s\n", dm.Dir)
		return
	}
	fmt.Fprintf(w, "canaryd demo stopping: %s keeps its config and state (canaryd -demo -state-dir %s starts it again)\n",
		dm.Dir, shellQuote(dm.Dir))
}

// canaryctlPath is how the user runs canaryctl: the one beside canaryd
// (bin/canaryctl after make build), relative when that is shorter, else
// the one on $PATH.
func canaryctlPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "canaryctl"
	}
	sibling := filepath.Join(filepath.Dir(exe), "canaryctl")
	if _, err := os.Stat(sibling); err != nil {
		return "canaryctl"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, sibling); err == nil && len(rel) < len(sibling) {
			if !strings.Contains(rel, "/") {
				rel = "./" + rel // not the one on $PATH
			}
			return rel
		}
	}
	return sibling
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote is s as a shell word.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
