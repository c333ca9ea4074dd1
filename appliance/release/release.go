// Package release owns the canary release an appliance serves: the rollback
// latch, the progressive rollout, the verdict's evidence and the incident
// report a rollback triggers, behind one lock. Package decide decides; a
// Controller carries its steps out through small interfaces to the routing
// (Router, Engine), the state that outlives the process (Store), the front
// panel (Lights), the reports (Reports) and the status page's time line
// (Marks). canaryd's daemon only wires those to sockets, files and pins.
package release

import (
	"log/slog"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// Router holds the plan new requests follow (route.Router).
type Router interface {
	Plan() *route.Plan
	Publish(p *route.Plan) (old *route.Plan)
	SetMode(m state.Mode)
	SetStep(percent float64)
}

// Engine is the data plane: it gets ready for a new config generation's
// plan before the plan is published, and lets the old one go after.
type Engine interface {
	Prepare(plan *route.Plan)
	Retire(old, current *route.Plan)
}

// Store is where the release outlives the process: the state directory
// (state.Store) on one Pi; a store shared by a fleet is one more.
type Store interface {
	Save(state.Latch) error
	LoadRollout() state.Rollout
	SaveRollout(state.Rollout) error
	LoadLive() state.Live
	SaveLive(state.Live) error
	LoadEvidence() (analysis.Evidence, bool)
	SaveEvidence(analysis.Evidence) error
}

// Lights is the front panel's part the release drives.
type Lights interface {
	Show(status, canary led.Pattern)
}

// Reports are the incident reports (incident.Store).
type Reports interface {
	Write(r incident.Report, keep int, maxBytes int64) (path string, err error)
	List() ([]incident.Summary, error)
}

// Marks is the status page's time line (history.History).
type Marks interface {
	Mark(now time.Time, kind history.Kind, percent float64, text string)
}

// Deps are what a Controller drives.
type Deps struct {
	Router  Router
	Engine  Engine
	Store   Store
	Lights  Lights
	Reports Reports
	Marks   Marks
	// Journal is what the canary served, that an incident report lists.
	Journal *journal.Journal
	Log     *slog.Logger
	// ConfigDir is where the config comes from, for the status.
	ConfigDir string
	// Fleet is the fleet this Pi is a member of, nil for a Pi on its own.
	Fleet Fleet
}

// Fleet is the release's other members as the controller sees them: their
// evidence beside this member's own (the canary is judged on this
// member's counts and also on the sum of the live members', so that a
// canary failing a little at several small sites is found sooner than at
// any one of them), and whether they are in reach.
type Fleet interface {
	// Exchange gives the fleet this member's tick and returns the ticks
	// the others counted since the last call, of members serving version
	// as a canary, with how many members that makes, this one included.
	Exchange(version string, own analysis.Tick) (others []analysis.Tick, members int)
	// Connected reports whether this member reaches the fleet; cut off,
	// its status light winks.
	Connected() bool
}

// Controller is the release. Its exported methods take its lock and are
// safe for concurrent use; the unexported ones run under it. Every change
// happens in the order the calls take the lock; the data plane only reads
// the plans it publishes.
type Controller struct {
	Deps

	mu  sync.Mutex
	cfg *config.Config
	gen uint64
	// cfgErr is the last rejected config's error, "" when the running one
	// is the newest; bootRefused: it is the boot partition's copy the
	// import refused, shown until a changed config directory applies.
	cfgErr      string
	bootRefused bool
	cfgRejects  uint64 // rejected reloads, since start

	latch state.Latch
	live  state.Live // since when the canary serves

	// rollout is where canary.steps stands, stepBase the canary's request
	// counts when its step began, holding why it last held ("" for not).
	rollout  state.Rollout
	stepBase map[string]uint64
	holding  string

	// evidence is the verdict's memory of the release serving since live,
	// gathered from the tallies of each tick and the probes of a canary
	// out of the rotation; saved every saveEvery while it changes.
	evidence      analysis.Evidence
	evidenceDirty bool
	evidenceSaved time.Time
	tallies       tallier
	probes        prober
	thresholds    analysis.Thresholds // what counted as slow in the last tick
	verdict       analysis.Verdict
	judgedAt      time.Time // the last tick's end
	// pooled is the evidence of the fleet's live members together, with
	// a fleet; kept in memory only: a restart starts it afresh.
	pooled      analysis.Evidence
	poolMembers int  // how many members the last tick pooled
	cutOff      bool // the fleet was out of reach at the last tick

	rollbacks map[state.Cause]uint64 // since start
	rate      rate                   // the status line's requests a minute

	// reporting serializes the incident reports written in the background;
	// reports counts those in flight.
	reporting sync.Mutex
	reports   sync.WaitGroup
}

// New is the release as the state directory left it: latch is what Store
// opened. Configure gives it its first config.
func New(deps Deps, latch state.Latch) *Controller {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Controller{Deps: deps, latch: latch, rollout: deps.Store.LoadRollout(), live: deps.Store.LoadLive(),
		rollbacks:  map[state.Cause]uint64{},
		thresholds: analysis.Thresholds{Stable: analysis.Never, Canary: analysis.Never}}
}

// Config is the running config.
func (c *Controller) Config() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Wait waits for the incident reports being written.
func (c *Controller) Wait() { c.reports.Wait() }

// showLights shows the current state on the front panel.
func (c *Controller) showLights() {
	c.Lights.Show(decide.Lights(c.Router.Plan().Mode, c.cfgErr, c.verdict.State, c.cutOff))
}
