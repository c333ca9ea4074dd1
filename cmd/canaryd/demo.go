package main

// canaryd -demo: what it tells a newcomer.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/canary-pi/canary-pi/appliance/daemon"
	"github.com/canary-pi/canary-pi/appliance/demo"
)

func printDemoBanner(w io.Writer, d *daemon.Daemon, dm *demo.Demo) {
	ctl := "canaryctl"
	if exe, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(exe), "canaryctl")
		if _, err := os.Stat(sibling); err == nil {
			ctl = sibling
			if wd, err := os.Getwd(); err == nil {
				if rel, err := filepath.Rel(wd, sibling); err == nil && len(rel) < len(sibling) {
					ctl = rel
				}
			}
		}
	}
	fmt.Fprintf(w, `canaryd demo: pong-v1 (stable, weight 10) and pong-v2 (canary, weight 5) behind http://%[1]s

  curl:       curl http://%[1]s/ping
              for i in $(seq 15); do curl -s http://%[1]s/ping; echo; done
  canaryctl:  %[2]s -socket %[3]s status
              %[2]s -socket %[3]s rollback    (or: button, resume, promote)
`, d.ProxyAddr(), ctl, d.Socket())
	if a := d.AdminAddr(); a != "" {
		fmt.Fprintf(w, "  status:     http://%s/  (the status page; /metrics for Prometheus)\n", a)
	}
	fault := func(name, query string) string {
		return fmt.Sprintf("curl -X POST 'http://%s/demo/fault%s'", dm.Addrs[name], query)
	}
	fmt.Fprintf(w, `
Watch the verdict: keep some traffic going (20 requests a second) in another terminal,
              while sleep 0.05; do curl -s -o /dev/null http://%s/ping; done
  then make only pong-v2 fail 30%% of its requests, and the canary light turns red:
              %s
  or answer four times slower:  %s
  or make both fail alike: the light stays green, a shared failure, not the canary's:
              %s; %s
  back to healthy:  %s; %s   (then %s -socket %s resume)
`, d.ProxyAddr(), fault("pong-v2", "?errors=0.3"), fault("pong-v2", "?slower=4"),
		fault("pong-v1", "?errors=0.6"), fault("pong-v2", "?errors=0.6"),
		fault("pong-v1", ""), fault("pong-v2", ""), ctl, d.Socket())
	fmt.Fprintln(w, "\nCtrl-C stops the demo and removes its temporary files.")
}
