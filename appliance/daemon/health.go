package daemon

import (
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/health"
)

// checked is what the health checks of cfg's upstreams check.
func checked(cfg *config.Config) []health.Upstream {
	var ups []health.Upstream
	for _, u := range cfg.Upstreams {
		ups = append(ups, health.Upstream{Name: u.Name, Check: u.HealthCheck(), URL: u.HealthURL(), Interval: u.HealthInterval})
	}
	return ups
}

// healthChanged moves u in or out of the rotation, as its health check
// now says, and says so.
func (d *Daemon) healthChanged(u health.Upstream, up bool, err error) {
	d.release.SetHealth(u.Name, up, time.Now())
	if up {
		d.log.Info("health check passed: in the rotation", "UPSTREAM", u.Name, "HEALTH_URL", u.URL)
		return
	}
	d.log.Warn("health check failed: out of the rotation", "UPSTREAM", u.Name, "HEALTH_URL", u.URL, "error", err.Error())
}
