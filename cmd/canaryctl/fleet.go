package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
)

// printFleetIncidents prints every member's incident reports, newest
// first, one line each.
func (c *cli) printFleetIncidents(body []byte) error {
	var list []admin.FleetIncident
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", c.socket, err)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "no incidents in the fleet: no rollbacks yet")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "member\tid\tversion\tcause\tstarted\trolled back\twrites\tusers")
	for _, in := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", in.Member, in.ID, in.Version, in.Cause,
			in.Started.UTC().Format(time.RFC3339), in.RolledBack.UTC().Format(time.RFC3339), in.Requests, in.Users)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "each member's report is on that member: `canaryctl incident ID` there lists its writes")
	return nil
}

// printFleet prints the members of the release, one line each.
func (c *cli) printFleet(body []byte) error {
	var members []admin.FleetMember
	if err := json.Unmarshal(body, &members); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", c.socket, err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "member	connected	last seen	state	verdict	canary	step	requests/min")
	for _, m := range members {
		name, connected, step := m.Name, "no", "-"
		if m.Self {
			name += " (this)"
		}
		if m.Connected {
			connected = "yes"
		}
		if m.Step != nil {
			step = strconv.Itoa(*m.Step + 1)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %g%%\t%s\t%g\n", name, connected, orDash(m.LastSeen), m.State,
			orDash(m.Verdict), orDash(m.CanaryVersion), m.CanaryPercent, step, m.RequestsPerMinute)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
