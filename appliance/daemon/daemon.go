// Package daemon is canaryd: it loads the configuration, owns the rollback
// latch, and wires the router, the data plane, the admin API and the front
// panel together. cmd/canaryd only parses flags and signals.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/decide"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/watch"
	"github.com/canary-pi/canary-pi/gpio"
)

// Options are canaryd's command-line settings.
type Options struct {
	ConfigDir string
	StateDir  string
	GPIO      string // auto, periph, sim or off
	Listen    string // overrides proxy.listen when set
	Version   string // the build's version, for the status
	Logger    *slog.Logger
	// Notifier tells the service manager what the daemon does; nil for none.
	Notifier Notifier
	// Panel, when set, is the front panel to use instead of opening one
	// for GPIO (embedding, tests).
	Panel gpio.Panel
	// ProxyListener, when set, is the proxy's listener, inherited from the
	// service manager (socket activation); proxy.listen and Listen are not
	// bound then.
	ProxyListener net.Listener
}

// Notifier is the service manager's side of the daemon's life: systemd's
// sd_notify in production, nothing in tests and the demo.
type Notifier interface {
	Ready()
	Reloading()
	Stopping()
	Status(line string)
}

type noNotifier struct{}

func (noNotifier) Ready()        {}
func (noNotifier) Reloading()    {}
func (noNotifier) Stopping()     {}
func (noNotifier) Status(string) {}

// Daemon is a running canaryd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	router  *route.Router
	proxy   *proxy.Proxy
	panel   gpio.Panel
	store   *state.Store
	watcher *watch.Watcher
	notify  Notifier
	rate    rate

	proxyLn  net.Listener
	socketLn net.Listener
	adminLn  net.Listener // nil when admin.listen is off
	token    string       // admin.token_file's content, read at start

	// mu serializes everything that changes the configuration or the
	// latch; the data plane never takes it.
	mu       sync.Mutex
	reloadMu sync.Mutex // one reload at a time; taken before mu
	cfg      *config.Config
	gen      uint64
	cfgErr   string
	// bootRefused: cfgErr is the boot partition's copy that the import
	// refused, shown until a changed config directory applies.
	bootRefused bool
	latch       state.Latch

	// checks are the running health checks, by upstream and check, and
	// checksCtx what they run in: Run's, nil before it.
	checks    map[string]context.CancelFunc
	checksCtx context.Context

	// rollout is where canary.steps stands, stepBase the canary's request
	// counts when its step began, holding why it last held ("" for not).
	rollout  state.Rollout
	stepBase map[string]uint64
	holding  string

	// journal is what the canary served, jfile its copy on disk, reports
	// the incident reports written from it at every rollback, one at a
	// time (incidentMu), the writes in flight counted by incidents. live
	// is since when the canary serves.
	journal    *journal.Journal
	jfile      *journal.File
	reports    *incident.Store
	incidentMu sync.Mutex
	incidents  sync.WaitGroup
	listErr    atomic.Pointer[string] // the last error listing the reports, logged once
	live       state.Live

	// evidence is the verdict's memory of the release serving since live,
	// gathered from the tallies of each tick and the probes of a canary
	// out of the rotation; saved every saveEvery while it changes.
	evidence      analysis.Evidence
	evidenceDirty bool
	evidenceSaved time.Time
	tallies       tallier
	probes        prober
	thresholds    analysis.Thresholds // what counted as slow in the last tick

	verdict    analysis.Verdict
	rollbacks  map[state.Cause]uint64 // since start
	cfgRejects uint64                 // rejected reloads, since start
	hist       *history.History       // the status page's charts
}

// New loads the configuration and the latch and binds every listener, so
// that any reason not to start is known before Run. The error is one line.
func New(opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notifier == nil {
		opts.Notifier = noNotifier{}
	}
	d := &Daemon{opts: opts, log: opts.Logger, notify: opts.Notifier, started: time.Now(),
		rollbacks: map[state.Cause]uint64{}, checks: map[string]context.CancelFunc{}, hist: history.New(),
		thresholds: analysis.Thresholds{Stable: analysis.Never, Canary: analysis.Never}}
	d.watcher = watch.New(opts.ConfigDir, watch.Options{Logger: opts.Logger})

	cfg, err := config.Load(opts.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("no valid config: %w", err)
	}
	store, latch, aside, err := state.Open(opts.StateDir, time.Now())
	if err != nil {
		return nil, err
	}
	for _, a := range aside {
		d.log.Error(a.String()+": starting rolled back to be safe; `canaryctl resume` re-arms", "MESSAGE_ID", MsgUnreadable,
			"STATE_FILE", a.Path, "KEPT_AS", a.Kept, "error", a.Err.Error())
	}
	d.store = store
	d.rollout = store.LoadRollout()
	d.cfg, d.gen = cfg, 1
	if d.reports, err = openReports(opts.StateDir); err != nil {
		return nil, err
	}
	// A report that cannot be read is kept aside now, and said once,
	// rather than when the first list is asked for.
	reports, _ := d.Incidents()
	d.recoverIncident(latch, store.LoadLive(), cfg, reports)
	d.journal = journal.New(cfg.Journal.Records, cfg.Journal.Bodies)
	d.jfile = journal.NewFile(d.journal, filepath.Join(opts.StateDir, "journal"))
	d.jfile.Configure(cfg.Journal.File, cfg.Journal.FileMaxBytes)
	if d.live = store.LoadLive(); d.live.Version != cfg.Canary.Version {
		d.setLive(time.Now())
	} else {
		d.restoreEvidence()
	}
	if refusal := config.ImportRefusal(opts.ConfigDir); refusal != "" {
		d.cfgErr, d.bootRefused = refusal, true
		d.log.Error("config rejected, the last good one keeps serving", "MESSAGE_ID", MsgConfigRejected,
			"CONFIG_DIR", opts.ConfigDir, "error", refusal)
	}
	d.latch = latch
	// The latch file against the first config; its version is "the
	// running one", so the windows, new anyway, are not reset.
	dec := decide.Configured(latch, cfg, cfg.Canary.Version)
	plan := d.applyConfigured(dec, route.NewPlan(cfg, dec.Mode, nil))

	if d.panel = opts.Panel; d.panel == nil {
		if d.panel, err = openPanel(opts.GPIO, cfg.GPIO, d.log); err != nil {
			return nil, err
		}
	}

	d.router = route.NewRouter(plan)
	d.stepBase = canaryRequests(plan)
	if plan.HasCanary {
		// The verdict the restored evidence holds, on the lights from the
		// start: a canary judged bad before a restart is red after it,
		// before any request.
		d.verdict = analysis.Judge(&d.evidence, analysis.Recent{}, d.thresholds, analysis.NotEnough, policyOf(cfg))
	}
	d.proxy = proxy.New(d.router, proxy.Options{
		ConnectTimeout: cfg.Proxy.ConnectTimeout,
		ReadTimeout:    cfg.Proxy.HeaderTimeout,
		IdleTimeout:    cfg.Proxy.IdleTimeout,
		HeaderTimeout:  cfg.Proxy.ClientHeaderTimeout,
		MaxConns:       cfg.Proxy.MaxConnections,
		TrustedProxies: cfg.Proxy.TrustedProxies,
		UpstreamIdle:   cfg.Proxy.UpstreamIdle,
		Logger:         d.log,
	})
	d.proxy.Prepare(plan)
	d.proxy.SetAccessLog(cfg.Proxy.AccessLog)
	if cfg.Journal.Records > 0 {
		d.proxy.SetJournal(d.journal)
	}

	if d.token, err = readToken(cfg.Admin.TokenFile); err != nil {
		d.panel.Close()
		return nil, err
	}
	if err := d.listen(cfg); err != nil {
		d.closeListeners()
		d.panel.Close()
		return nil, err
	}
	d.showLights()
	return d, nil
}

func (d *Daemon) listen(cfg *config.Config) error {
	addr := cfg.Proxy.Listen
	if d.opts.Listen != "" {
		addr = d.opts.Listen
	}
	var err error
	if d.opts.ProxyListener != nil {
		d.proxyLn = d.opts.ProxyListener
	} else if d.proxyLn, err = net.Listen("tcp", addr); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("proxy: %s is in use by another process: stop it, or choose another address with -listen or proxy.listen", addr)
		}
		return fmt.Errorf("proxy: %w", err)
	}
	var warning string
	if d.socketLn, warning, err = admin.ListenUnix(cfg.Admin.Socket, cfg.Admin.SocketGroup); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if warning != "" {
		d.log.Warn(warning)
	}
	if cfg.Admin.Listen != "" {
		if d.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	return nil
}

func (d *Daemon) closeListeners() {
	for _, ln := range []net.Listener{d.proxyLn, d.socketLn, d.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// ProxyAddr is the address the proxy listens on.
func (d *Daemon) ProxyAddr() string { return d.proxyLn.Addr().String() }

// AdminAddr is the admin TCP listener's address, "" when it is off.
func (d *Daemon) AdminAddr() string {
	if d.adminLn == nil {
		return ""
	}
	return d.adminLn.Addr().String()
}

// Socket is the admin unix socket's path.
func (d *Daemon) Socket() string { return d.socketLn.Addr().String() }

// Run serves until ctx is done, then stops gracefully: no new connections,
// requests in flight get up to ten seconds to finish. It returns nil after a
// clean stop.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	token := d.token
	d.mu.Lock()
	adminCfg := d.cfg.Admin // as at start: a change needs a restart
	d.mu.Unlock()
	var wg sync.WaitGroup
	background := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	errs := make(chan error, 3)
	go func() { errs <- d.proxy.Serve(d.proxyLn) }()
	go func() {
		errs <- admin.Serve(ctx, d.socketLn, d.mountWeb(admin.NewHandler(d, admin.HandlerOptions{Cause: state.CauseCommand})))
	}()
	if d.adminLn != nil {
		// config.Load refused a listener off loopback without a token.
		h := d.mountWeb(admin.NewHandler(d, admin.HandlerOptions{Cause: state.CauseAPI, Token: token,
			PublicRead: adminCfg.PublicRead, Hosts: admin.NewHosts(adminCfg.Listen, adminHosts(adminCfg.Hosts, d.adminLn.Addr()))}))
		go func() { errs <- admin.Serve(ctx, d.adminLn, h) }()
	}
	d.mu.Lock()
	version := d.cfg.Canary.Version
	d.checksCtx = ctx
	d.syncChecks(d.cfg)
	d.mu.Unlock()
	d.probes.run(ctx)
	background(func() { d.handlePresses(ctx) })
	background(func() { d.watcher.Run(ctx, func() { d.reload() }) })
	// READY=1 before the first STATUS=: the order systemd shows them in.
	d.notify.Ready()
	background(func() { d.reportStatus(ctx) })
	background(func() { d.analyze(ctx) })
	background(func() { d.flushJournal(ctx) })
	background(func() { d.recordHistory(ctx) })

	d.log.Info("canaryd serving", "LISTEN", d.ProxyAddr(), "ADMIN_SOCKET", d.Socket(),
		"ADMIN_LISTEN", d.AdminAddr(), "GPIO", d.panel.Mode(), "STATE", string(d.router.Plan().Mode),
		"CANARY_VERSION", version, "VERSION", d.opts.Version)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		if runErr != nil {
			runErr = fmt.Errorf("serving stopped: %w", runErr)
		}
	}
	d.notify.Stopping()
	d.log.Info("canaryd stopping")
	cancel()
	stop, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := d.proxy.Shutdown(stop); err != nil {
		d.log.Warn("requests still in flight were cut off at shutdown", "error", err.Error())
	}
	d.closeListeners()
	wg.Wait()
	d.incidents.Wait()
	if err := d.jfile.Close(time.Now()); err != nil {
		d.log.Error("the journal file could not be written at shutdown", "error", err.Error())
	}
	d.panel.Close()
	return runErr
}

// readToken reads admin.token_file; "" when none is configured.
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin.token_file %s is empty", path)
	}
	return tok, nil
}

// adminHosts are the names the admin listener answers to beside its
// configured address: admin.hosts, and the address a host name in
// admin.listen was bound to, so that a browser may use either.
func adminHosts(hosts []string, bound net.Addr) []string {
	names := slices.Clone(hosts)
	if tcp, ok := bound.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		names = append(names, tcp.IP.String())
	}
	return names
}

// resetCanary gives the canary of plan a clean slate: empty analysis
// windows and no verdict, so that a new release, or one re-armed after a
// rollback, is judged on its own requests; d.mu is held.
func (d *Daemon) resetCanary(plan *route.Plan) {
	plan.ResetWindows(config.Canary)
	d.verdict = analysis.Verdict{}
}

// applyConfigured carries out what the config d.cfg does to the latch, the
// rollout and plan, its new routing plan, and returns the plan to publish;
// d.mu is held.
func (d *Daemon) applyConfigured(dec decide.Decision, plan *route.Plan) *route.Plan {
	now := time.Now()
	if decide.Rearmed(d.latch, dec) {
		d.log.Info("a new canary version re-arms the canary", "CANARY_VERSION", d.cfg.Canary.Version,
			"LATCHED_VERSION", d.latch.Version, "LATCH", string(d.latch.Mode))
	}
	d.latch = dec.Latch
	for _, step := range dec.Steps {
		switch step {
		case decide.Save:
			if err := d.store.Save(dec.Latch); err != nil {
				d.log.Error("cannot save the latch", "error", err.Error())
			}
		case decide.ResetCanary:
			d.resetCanary(plan)
			plan.Join(config.Canary, now)
			d.setLive(now)
		}
	}
	return d.rolloutPlan(plan, now)
}

// Reload re-reads the config directory. A directory that does not validate
// changes nothing but the error the status shows; the error is returned.
func (d *Daemon) Reload(ctx context.Context) error { return d.reload() }

// reload applies the config directory. A directory whose content is the
// running config's is left alone: editors and config tools touch files
// without changing them, and a reload by hand right after the watcher's
// must not count as another generation.
func (d *Daemon) reload() error {
	// The directory is read without d.mu, so that a rollback does not wait
	// for the config files to be read; reloadMu keeps reloads in order. A
	// config that changes the latch (a new canary.version) still has it
	// saved, fsync included, under d.mu, as a rollback saves its own.
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := config.Load(d.opts.ConfigDir)

	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil && cfg.Digest == d.cfg.Digest && (d.cfgErr == "" || d.bootRefused) {
		return nil
	}
	d.notify.Reloading()
	defer d.notify.Ready()
	if err != nil {
		if msg := err.Error(); msg != d.cfgErr {
			d.log.Error("config rejected, the last good one keeps serving", "MESSAGE_ID", MsgConfigRejected,
				"CONFIG_DIR", d.opts.ConfigDir, "CONFIG_FILE", errorFile(err), "error", msg)
			d.cfgErr, d.bootRefused = msg, false
		}
		d.cfgRejects++
		d.showLights()
		return fmt.Errorf("config rejected: %w", err)
	}
	d.warnUnappliable(cfg)
	dec := decide.Configured(d.latch, cfg, d.cfg.Canary.Version)
	prevVersion := d.cfg.Canary.Version
	d.gen++
	d.cfg, d.cfgErr, d.bootRefused = cfg, "", false
	plan := d.applyConfigured(dec, route.NewPlan(cfg, dec.Mode, d.router.Plan()))
	d.proxy.Prepare(plan)
	d.proxy.SetAccessLog(cfg.Proxy.AccessLog)
	d.journal.SetBodyLimit(cfg.Journal.Bodies)
	d.jfile.Configure(cfg.Journal.File, cfg.Journal.FileMaxBytes)
	old := d.router.Publish(plan)
	d.proxy.Retire(old, plan)
	if cfg.Canary.Version != prevVersion {
		d.mark(time.Now(), history.Version, versionText(prevVersion, cfg.Canary.Version))
	}
	if cfg.HasCanary() && d.evidence.Errors.Tolerance != policyOf(cfg).ErrorsTolerance() {
		// The errors test is of one null, its tolerance: another is
		// another test, from now.
		d.restartEvidence(time.Now())
		d.log.Warn("canary.tolerance changed: the verdict starts afresh", "CANARY_VERSION", cfg.Canary.Version,
			"TOLERANCE", cfg.Canary.Tolerance)
	}
	d.syncChecks(cfg)
	d.showLights()
	d.log.Info("config applied", "MESSAGE_ID", MsgConfigApplied, "GENERATION", d.gen,
		"UPSTREAMS", len(cfg.Upstreams), "CANARY_VERSION", cfg.Canary.Version, "STATE", string(d.router.Plan().Mode))
	return nil
}

// errorFile is the config file a load error is about, "" when unknown.
func errorFile(err error) string {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Pos.File
	}
	return ""
}

// warnUnappliable logs settings that only take effect at a restart.
func (d *Daemon) warnUnappliable(cfg *config.Config) {
	for _, key := range config.RestartNeeded(d.cfg, cfg) {
		if key == "proxy.listen" && d.opts.Listen != "" {
			continue // -listen overrides it
		}
		d.log.Warn(key+" changed: restart canaryd to apply it", "KEY", key)
	}
}

// Rollback sends every new request to stable upstreams, latched.
func (d *Daemon) Rollback(ctx context.Context, cause state.Cause) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.act(decide.Rollback, cause, "")
}

// Resume clears a rollback or a promotion, and else a pause.
func (d *Daemon) Resume(ctx context.Context, cause state.Cause) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resume(cause, time.Now())
}

// Promote sends every new request to the canary, latched.
func (d *Daemon) Promote(ctx context.Context, cause state.Cause) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.act(decide.Promote, cause, "")
}

// act carries out the decision on op, with d.mu held; reason is an
// automatic rollback's, for the log.
func (d *Daemon) act(op decide.Op, cause state.Cause, reason string) error {
	now := time.Now()
	dec, err := decide.Act(d.latch, d.router.Plan().HasCanary, d.cfg.Canary.Version, op, cause, now)
	if err != nil || dec.Steps == nil {
		return err
	}
	var saveErr error
	published := false
	for _, step := range dec.Steps {
		switch step {
		case decide.Publish:
			d.router.SetMode(dec.Mode)
			published = true
		case decide.Save:
			if saveErr = d.store.Save(dec.Latch); saveErr != nil && !published {
				return fmt.Errorf("the latch could not be saved, nothing changed: %w", saveErr)
			}
		case decide.ResetCanary:
			plan := d.router.Plan()
			d.resetCanary(plan)
			plan.Join(config.Canary, now)
			d.restartRollout(now)
			d.setLive(now)
		}
	}
	if op == decide.Rollback {
		d.reportIncident(cause, reason, now)
	}
	d.latch = dec.Latch
	d.showLights()
	d.mark(now, opKinds[op], actText(op, cause, d.cfg.Canary.Version, reason))
	attrs := []any{"MESSAGE_ID", opMessageIDs[op], "CAUSE", cause, "CANARY_VERSION", d.cfg.Canary.Version}
	if reason != "" {
		attrs = append(attrs, "REASON", reason)
	}
	if cause == state.CauseAuto && op == decide.Rollback {
		g := d.verdict.Strongest()
		attrs = append(attrs, "TEST", d.evidence.BadTest, "EVIDENCE", evidenceField(g.Evidence),
			"THRESHOLD", evidenceField(g.Threshold), "FALSE_ALARM", evidenceField(d.cfg.Canary.FalseAlarm))
	}
	d.log.Warn(opMessages[op], attrs...)
	if op == decide.Rollback {
		d.rollbacks[cause]++
	}
	if saveErr != nil {
		d.log.Error(string(op)+": the traffic moved, but the latch could not be saved", "error", saveErr.Error())
		return fmt.Errorf("%s: the traffic moved, but the latch could not be saved: %w", op, saveErr)
	}
	return nil
}

// The journal's words for each action.
var (
	opMessages = map[decide.Op]string{
		decide.Rollback: "rolled back: all new requests go to stable upstreams",
		decide.Resume:   "resumed: the canary takes its configured share",
		decide.Promote:  "promoted: all new requests go to the canary",
	}
	opMessageIDs = map[decide.Op]string{decide.Rollback: MsgRollback, decide.Resume: MsgResume, decide.Promote: MsgPromote}
	opKinds      = map[decide.Op]history.Kind{decide.Rollback: history.Rollback, decide.Resume: history.Resume, decide.Promote: history.Promote}
)

// Pause holds a progressive rollout at its step.
func (d *Daemon) Pause(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pause(time.Now())
}

// Button presses the button through the panel's own path.
func (d *Daemon) Button(ctx context.Context, long bool) error {
	// The press itself cannot carry a refusal back: say it first.
	if !d.router.Plan().HasCanary {
		return state.ErrNoCanary
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.panel.Press(ctx, long)
}

// handlePresses turns presses into actions: a short press rolls back, a
// long one resumes.
func (d *Daemon) handlePresses(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-d.panel.Presses():
			d.mu.Lock()
			var err error
			if op := decide.Press(p.Long); op == decide.Resume {
				err = d.resume(state.CauseButton, time.Now())
			} else {
				err = d.act(op, state.CauseButton, "")
			}
			d.mu.Unlock()
			if err != nil {
				d.log.Warn("button press changed nothing", "LONG", p.Long, "error", err.Error())
			}
			p.Handled()
		}
	}
}

// showLights shows the current state; d.mu is held.
func (d *Daemon) showLights() {
	d.panel.Show(decide.Lights(d.router.Plan().Mode, d.cfgErr, d.verdict.State))
}

// Status is the daemon's state as the admin API shows it.
func (d *Daemon) Status() admin.Status {
	now := time.Now()
	d.mu.Lock()
	cfg, gen, cfgErr, latch, verdict, plan := d.cfg, d.gen, d.cfgErr, d.latch, d.verdict, d.router.Plan()
	evidence, thresholds := d.evidence, d.thresholds
	rollout := d.rolloutStatus(now)
	d.mu.Unlock()
	mode := plan.Mode
	// The lights as the state sets them, whether or not a panel shows them
	// (-gpio off): status "off" means canaryd is not running.
	status, canary := decide.Lights(mode, cfgErr, verdict.State)
	st := admin.Status{
		State:         mode,
		CanaryVersion: cfg.Canary.Version,
		CanaryPercent: round1(plan.CanaryPercent(now)),
		LEDs:          admin.LEDs{Status: status, Canary: canary},
		Config:        admin.ConfigInfo{Generation: gen, Error: cfgErr, Dir: d.opts.ConfigDir, Files: cfg.Files},
		Rollout:       rollout,
		Version:       d.opts.Version,
		Listen:        d.ProxyAddr(),
		GPIO:          d.panel.Mode(),
		StartedAt:     d.started.UTC().Format(time.RFC3339),
		Upstreams:     make([]admin.Upstream, 0, len(plan.Upstreams)),
	}
	st.Message = decide.Message(mode, latch, verdict)
	if latch.Latched() {
		st.Latch = &admin.Latch{State: latch.Mode, Version: latch.Version, Cause: latch.Cause,
			At: latch.At.UTC().Format(time.RFC3339)}
	}
	if plan.HasCanary {
		st.Verdict = verdictStatus(verdict, evidence, cfg, thresholds)
	}
	for _, u := range plan.Upstreams {
		var c analysis.Counts
		var span time.Duration
		if w := u.Stats.Window.Load(); w != nil {
			c, span = w.Snapshot(now), w.Span()
		}
		st.Upstreams = append(st.Upstreams, admin.Upstream{
			Name: u.Name, Role: string(u.Role), URL: u.URL.String(), Weight: u.Weight,
			Requests: u.Stats.Requests(), Errors: u.Stats.Errors(),
			Healthy: u.Weight > 0 && plan.Healthy(u, now), InFlight: u.Stats.InFlight(),
			WindowRequests: c.Requests, WindowErrors: c.Errors,
			ErrorRate: round4(c.ErrorRate()), RatePerMin: round1(c.PerMinute(span)),
			LatencyP50Ms: millis(c.Quantile(0.5)), LatencyP99Ms: millis(c.Quantile(0.99)),
		})
	}
	return st
}

func round4(f float64) float64       { return float64(int64(f*1e4+0.5)) / 1e4 }
func millis(d time.Duration) float64 { return round1(float64(d) / float64(time.Millisecond)) }

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// Healthy reports whether the daemon does its work: the config watcher
// turns and the proxy answers. The watchdog pings systemd only while it
// does, so a wedged daemon is restarted.
func (d *Daemon) Healthy() error {
	if since := time.Since(d.watcher.Alive()); since > 5*time.Second {
		return fmt.Errorf("the config watcher has not turned for %s", since.Round(time.Second))
	}
	return d.proxy.Probe(d.ProxyAddr(), 2*time.Second)
}
