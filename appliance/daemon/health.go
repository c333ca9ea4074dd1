package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/health"
)

// healthClient sends the health checks: its own connections, apart from the
// data plane's pools, so a check measures the upstream and not a busy pool.
var healthClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}

// syncChecks runs a health check for each upstream of cfg with a
// health_path, stopping those cfg no longer has or has changed; d.mu is
// held. Before Run there is nothing to run them in: Run starts them.
func (d *Daemon) syncChecks(cfg *config.Config) {
	if d.checksCtx == nil {
		return
	}
	want := map[string]config.Upstream{}
	for _, u := range cfg.Upstreams {
		if hc := u.HealthCheck(); hc != "" {
			want[u.Name+"\x00"+hc] = u
		}
	}
	for key, stop := range d.checks {
		if _, ok := want[key]; !ok {
			stop()
			delete(d.checks, key)
		}
	}
	for key, u := range want {
		if _, ok := d.checks[key]; ok {
			continue
		}
		ctx, stop := context.WithCancel(d.checksCtx)
		d.checks[key] = stop
		go health.Run(ctx, healthClient, u.HealthURL(), u.HealthInterval, func(up bool, err error) {
			d.healthChanged(ctx, u, up, err)
		})
	}
}

// healthChanged publishes the plan with u in or out of the rotation, as its
// check now says, and logs the change.
func (d *Daemon) healthChanged(check context.Context, u config.Upstream, up bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if check.Err() != nil {
		return // stopped: a reload changed or removed the check meanwhile
	}
	d.router.Publish(d.router.Plan().WithHealth(u.Name, up, time.Now()))
	if up {
		d.log.Info("health check passed: in the rotation", "UPSTREAM", u.Name, "HEALTH_URL", u.HealthURL())
		return
	}
	d.log.Warn("health check failed: out of the rotation", "UPSTREAM", u.Name, "HEALTH_URL", u.HealthURL(),
		"error", err.Error())
}
