package release

import (
	"fmt"
	"time"

	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// mark records on the charts' time line what changed the canary's share:
// the share it shows is the plan's now, after the change.
func (c *Controller) mark(now time.Time, kind history.Kind, text string) {
	c.Marks.Mark(now, kind, c.Router.Plan().CanaryPercent(now), text)
}

// actText is a mark's line for an action, such as "rollback of v2 by the
// button" or "rollback of v2 by the analysis (auto_rollback): canary 26
// of 26 errors ...".
func actText(op decide.Op, cause state.Cause, version, reason string) string {
	s := fmt.Sprintf("%s of %s %s", op, version, decide.By(cause))
	if reason != "" {
		s += ": " + reason
	}
	return s
}

// versionText is a mark's line for a reload that changed canary.version.
func versionText(from, to string) string {
	switch {
	case from == "":
		return "canary " + to + " configured"
	case to == "":
		return "canary " + from + " removed"
	}
	return "canary " + from + " replaced by " + to
}
