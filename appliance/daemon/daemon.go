// Package daemon is canaryd: it loads the configuration and wires the
// release (package release), the data plane, the admin API, the config
// watcher, the front panel and systemd together. It decides nothing:
// cmd/canaryd parses flags and signals, the release decides.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/fleet"
	"github.com/canary-pi/canary-pi/appliance/health"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/proxy"
	"github.com/canary-pi/canary-pi/appliance/release"
	"github.com/canary-pi/canary-pi/appliance/route"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/appliance/watch"
	"github.com/canary-pi/canary-pi/gpio/panel"
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
	Panel panel.Panel
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
	notify  Notifier

	release *release.Controller
	fleet   *fleet.Member // nil without [fleet]
	router  *route.Router
	proxy   *proxy.Proxy
	panel   panel.Panel
	watcher *watch.Watcher
	checks  health.Checks
	reports *reports
	journal *journal.Journal // what the canary served
	jfile   *journal.File    // and its copy on disk
	hist    *history.History // the status page's charts

	proxyLn  net.Listener
	socketLn net.Listener
	adminLn  net.Listener   // nil when admin.listen is off
	token    string         // admin.token_file's content, read at start
	boot     *config.Config // the config canaryd started with: what restart-only keys keep

	reloading sync.Mutex // one reload at a time
}

// New loads the configuration and the state directory, takes up the
// release it kept, and binds every listener, so that any reason not to
// start is known before Run. The error is one line.
func New(opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notifier == nil {
		opts.Notifier = noNotifier{}
	}
	d := &Daemon{opts: opts, log: opts.Logger, notify: opts.Notifier, started: time.Now(), hist: history.New()}
	d.watcher = watch.New(opts.ConfigDir, watch.Options{Logger: opts.Logger})

	cfg, err := config.Load(opts.ConfigDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || config.IsEmpty(err) {
			return nil, fmt.Errorf("no config: %w: write %s (see man canaryd.toml), or try canaryd -demo for a demo without one", err, filepath.Join(opts.ConfigDir, "canaryd.toml"))
		}
		return nil, fmt.Errorf("no valid config: %w", err)
	}
	if err := cfg.Preflight(); err != nil {
		return nil, err
	}
	store, latch, aside, err := state.Open(opts.StateDir, time.Now())
	if err != nil {
		return nil, err
	}
	for _, a := range aside {
		d.log.Error(a.String()+": starting rolled back to be safe; `canaryctl resume` re-arms", "MESSAGE_ID", release.MsgUnreadable,
			"STATE_FILE", a.Path, "KEPT_AS", a.Kept, "error", a.Err.Error())
	}
	if d.reports, err = openReports(opts.StateDir, d.log); err != nil {
		return nil, err
	}
	d.journal = journal.New(cfg.Journal.Records, cfg.Journal.Bodies)
	d.jfile = journal.NewFile(d.journal, filepath.Join(opts.StateDir, "journal"))
	if d.panel = opts.Panel; d.panel == nil {
		if d.panel, err = panel.OpenMode(opts.GPIO, panel.Wiring(cfg.GPIO), panel.Options{Logger: d.log}); err != nil {
			return nil, err
		}
	}
	d.router = route.NewRouter(nil)
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
	if cfg.Journal.Records > 0 {
		d.proxy.SetJournal(d.journal)
	}
	var st release.Store = store
	if cfg.Fleet.Enabled() {
		if d.fleet, err = fleet.NewMember(cfg.Fleet, d.aboutMe, d.log); err != nil {
			return nil, err
		}
		st = d.fleet.Store(st)
	}
	deps := release.Deps{Router: d.router, Engine: d.proxy, Store: st, Lights: d.panel,
		Reports: d.reports, Marks: d.hist, Journal: d.journal, Log: d.log, ConfigDir: opts.ConfigDir}
	if d.fleet != nil {
		deps.Fleet = d.fleet
		deps.Reports = d.fleet.Reports(d.reports)
	}
	d.release = release.New(deps, latch)
	d.apply(cfg)
	if refusal := config.ImportRefusal(opts.ConfigDir); refusal != "" {
		d.release.Rejected(refusal, true)
		d.log.Error("config rejected, the last good one keeps serving", "MESSAGE_ID", release.MsgConfigRejected,
			"CONFIG_DIR", opts.ConfigDir, "error", refusal)
	}

	d.boot = cfg
	if d.token, err = cfg.Admin.ReadToken(); err == nil {
		err = d.listen(cfg)
	}
	if err != nil {
		d.closeListeners()
		d.panel.Close()
		return nil, err
	}
	return d, nil
}

// apply makes cfg, a config that validated, the running one: at start and
// at every reload, the same way.
func (d *Daemon) apply(cfg *config.Config) {
	d.release.Configure(cfg, time.Now())
	d.proxy.SetAccessLog(cfg.Proxy.AccessLog)
	d.journal.SetBodyLimit(cfg.Journal.Bodies)
	d.jfile.Configure(cfg.Journal.File, cfg.Journal.FileMaxBytes)
	d.checks.Sync(checked(cfg))
}

func (d *Daemon) listen(cfg *config.Config) error {
	addr := cfg.Proxy.Listen
	if d.opts.Listen != "" {
		addr = d.opts.Listen
	}
	var err error
	if d.opts.ProxyListener != nil {
		d.proxyLn = d.opts.ProxyListener
	} else if d.proxyLn, err = listenTCP(addr); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("proxy: %s is in use by another process: stop it, or choose another address with -listen or proxy.listen", addr)
		}
		return fmt.Errorf("proxy: %w", err)
	}
	var warning string
	if d.socketLn, warning, err = admin.ListenUnix(cfg.Admin.Socket, cfg.Admin.SocketGroup); err != nil {
		return err
	}
	if warning != "" {
		d.log.Warn(warning)
	}
	if cfg.Admin.Listen != "" {
		if d.adminLn, err = listenTCP(cfg.Admin.Listen); err != nil {
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
		h := d.mountWeb(admin.NewHandler(d, admin.HandlerOptions{Cause: state.CauseAPI, Token: d.token,
			PublicRead: d.boot.Admin.PublicRead, Hosts: admin.NewHosts(d.boot.Admin.Listen, adminHosts(d.boot.Admin.Hosts, d.adminLn.Addr()))}))
		go func() { errs <- admin.Serve(ctx, d.adminLn, h) }()
	}
	d.checks.Start(ctx, d.healthChanged)
	background(func() { d.handlePresses(ctx) })
	background(func() { d.watcher.Run(ctx, func() { d.reload() }) })
	// READY=1 before the first STATUS=: the order systemd shows them in.
	d.notify.Ready()
	background(func() { d.reportStatus(ctx) })
	background(func() { d.release.Run(ctx) })
	if d.fleet != nil {
		background(func() {
			if err := d.fleet.Run(ctx, d.release); err != nil {
				d.log.Error("the fleet cannot be joined", "error", err.Error())
			}
		})
	}
	background(func() { d.jfile.Run(ctx, d.log) })
	background(func() { d.recordHistory(ctx) })

	d.log.Info("canaryd serving", "LISTEN", d.ProxyAddr(), "ADMIN_SOCKET", d.Socket(),
		"ADMIN_LISTEN", d.AdminAddr(), "GPIO", d.panel.Mode(), "STATE", string(d.router.Plan().Mode),
		"CANARY_VERSION", d.release.Config().Canary.Version, "VERSION", d.opts.Version)

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
	d.release.Wait()
	if err := d.jfile.Close(time.Now()); err != nil {
		d.log.Error("the journal file could not be written at shutdown", "error", err.Error())
	}
	d.panel.Close()
	return runErr
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

// Reload re-reads the config directory. A directory that does not validate
// changes nothing but the error the status shows; the error is returned.
func (d *Daemon) Reload(ctx context.Context) error { return d.reload() }

// reload applies the config directory, unless its content is the running
// config's. The directory is read outside the release's lock, so that a
// rollback does not wait for the config files to be read.
func (d *Daemon) reload() error {
	d.reloading.Lock()
	defer d.reloading.Unlock()
	cfg, err := config.Load(d.opts.ConfigDir)
	if err == nil && d.release.Unchanged(cfg) {
		return nil
	}
	d.notify.Reloading()
	defer d.notify.Ready()
	if err != nil {
		if msg := err.Error(); d.release.Rejected(msg, false) {
			d.log.Error("config rejected, the last good one keeps serving", "MESSAGE_ID", release.MsgConfigRejected,
				"CONFIG_DIR", d.opts.ConfigDir, "CONFIG_FILE", errorFile(err), "error", msg)
		}
		return fmt.Errorf("config rejected: %w", err)
	}
	d.warnUnappliable(d.release.Config(), cfg)
	d.apply(cfg)
	d.log.Info("config applied", "MESSAGE_ID", release.MsgConfigApplied, "GENERATION", d.release.Generation(),
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

// warnUnappliable logs settings that only take effect at a restart, as
// they change.
func (d *Daemon) warnUnappliable(old, cfg *config.Config) {
	for _, key := range d.restartOnly(old, cfg) {
		d.log.Warn(key+" changed: restart canaryd to apply it", "KEY", key)
	}
}

// restartOnly lists the keys whose change from old to cfg waits for a
// restart; -listen overrides proxy.listen, whose change then waits for
// nothing.
func (d *Daemon) restartOnly(old, cfg *config.Config) []string {
	return slices.DeleteFunc(config.RestartNeeded(old, cfg), func(key string) bool {
		return key == "proxy.listen" && d.opts.Listen != ""
	})
}

// Rollback sends every new request to stable upstreams, latched.
func (d *Daemon) Rollback(ctx context.Context, cause state.Cause) error {
	return d.release.Rollback(cause)
}

// Resume clears a rollback or a promotion, and else a pause; in a fleet,
// for every member, and not at all while the fleet is out of reach.
func (d *Daemon) Resume(ctx context.Context, cause state.Cause) error {
	if d.fleet != nil {
		return d.fleet.Resume(ctx, cause)
	}
	return d.release.Resume(cause)
}

// Promote sends every new request to the canary, latched; in a fleet, on
// every member, and not at all while the fleet is out of reach.
func (d *Daemon) Promote(ctx context.Context, cause state.Cause) error {
	if d.fleet != nil {
		return d.fleet.Promote(cause)
	}
	return d.release.Promote(cause)
}

// Pause holds a progressive rollout at its step.
func (d *Daemon) Pause(ctx context.Context) error { return d.release.Pause() }

// Button presses the button through the panel's own path.
func (d *Daemon) Button(ctx context.Context, long bool) error {
	// The press itself cannot carry a refusal back: say it first.
	if !d.release.HasCanary() {
		return state.ErrNoCanary
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.panel.Press(ctx, long)
}

// handlePresses hands the panel's presses to the release.
func (d *Daemon) handlePresses(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-d.panel.Presses():
			// How the press was seen: a Pi's kernel raises edges, an
			// emulated Pi's does not and the level is polled.
			d.log.Info("the button was pressed", "LONG", p.Long, "BUTTON_SEEN", p.Via)
			var err error
			if p.Long && d.fleet != nil {
				// A resume is the whole fleet's, or none.
				err = d.fleet.Resume(ctx, state.CauseButton)
			} else {
				err = d.release.Press(p.Long)
			}
			if err != nil {
				d.log.Warn("button press changed nothing", "LONG", p.Long, "error", err.Error())
			}
			p.Handled()
		}
	}
}

// Status is the daemon's state as the admin API shows it.
func (d *Daemon) Status() admin.Status {
	st := d.release.Status(time.Now())
	st.Version, st.Listen, st.GPIO = d.opts.Version, d.ProxyAddr(), d.panel.Mode()
	st.StartedAt = d.started.UTC().Format(time.RFC3339)
	st.Pending = d.restartOnly(d.boot, d.release.Config())
	if d.fleet != nil {
		st.Fleet = &admin.Fleet{Name: d.fleet.Name(), Release: d.boot.Fleet.Release, Connected: d.fleet.Connected(),
			Members: d.fleet.Live(), Server: d.fleet.Server()}
	}
	return st
}

// Members are the fleet's members as GET /v1/fleet lists them; nil
// without [fleet].
func (d *Daemon) Members() []admin.FleetMember {
	if d.fleet == nil {
		return nil
	}
	return d.fleet.Members()
}

// FleetIncidents are every member's incident reports, newest first; nil
// without [fleet].
func (d *Daemon) FleetIncidents(ctx context.Context) ([]admin.FleetIncident, error) {
	if d.fleet == nil {
		return nil, nil
	}
	return d.fleet.Incidents(ctx)
}

// aboutMe is what this member reports of itself to the fleet.
func (d *Daemon) aboutMe() admin.FleetMember {
	st := d.release.Status(time.Now())
	fm := admin.FleetMember{State: st.State, CanaryVersion: st.CanaryVersion, CanaryPercent: st.CanaryPercent}
	if st.Verdict != nil {
		fm.Verdict = st.Verdict.State.String()
	}
	if st.Rollout != nil {
		step := st.Rollout.Step
		fm.Step = &step
	}
	return fm
}

// reportStatus keeps the service manager's one-line status current.
func (d *Daemon) reportStatus(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		line := d.release.StatusLine(time.Now())
		if pending := d.restartOnly(d.boot, d.release.Config()); len(pending) > 0 {
			line += "; restart to apply " + strings.Join(pending, ", ")
		}
		d.notify.Status(line)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Healthy reports whether the daemon does its work: the config watcher
// turns and the proxy answers. The watchdog pings systemd only while it
// does, so a wedged daemon is restarted.
func (d *Daemon) Healthy() error {
	if since := time.Since(d.watcher.Alive()); since > 5*time.Second {
		return fmt.Errorf("the config watcher has not turned for %s", since.Round(time.Second))
	}
	return d.proxy.Probe(d.ProxyAddr(), 2*time.Second)
}
