// Command canaryd is the canary-pi daemon: the proxy, the config watcher,
// the lights and the button.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/daemon"
	"github.com/canary-pi/canary-pi/appliance/demo"
	"github.com/canary-pi/canary-pi/gpio/panel"
	"github.com/canary-pi/canary-pi/systemd"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cmdline is what canaryd's flags set beside daemon.Options.
type cmdline struct {
	demo, version                        *bool
	checkDir, importDir, backend, usedBy *string
}

// declareFlags declares canaryd's flags on fs, into opts and the cmdline
// it returns: run parses them, and canaryd(8) lists them (man_test.go).
func declareFlags(fs *flag.FlagSet, opts *daemon.Options) cmdline {
	fs.StringVar(&opts.ConfigDir, "config-dir", "/etc/canaryd", "the watched config `directory`")
	fs.StringVar(&opts.StateDir, "state-dir", defaultStateDir(), "persisted state `directory` (the rollback latch)")
	fs.StringVar(&opts.GPIO, "gpio", "auto", "front panel `mode`: "+strings.Join(panel.Modes, ", "))
	fs.StringVar(&opts.Listen, "listen", "", "proxy `address`, overriding proxy.listen")
	demoMode := fs.Bool("demo", false, "run with two built-in demo backends (pong-v1 weight 10, pong-v2 weight 5)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkDir := fs.String("check-config", "", "check the config `path` (a directory, or one file) as a start would, print one line and exit: 0 valid, 1 not")
	importDir := fs.String("import-config", "", "install this `directory`'s config into -config-dir when it changed since the last import and validates, then exit")
	backend := fs.String("demo-backend", "", "serve one demo backend `NAME` ({\"message\":\"NAME\"}) on -listen and nothing else")
	usedBy := fs.String("demo-used-by", "", "with -demo-backend: serve nothing, exit 0 when the config `directory` proxies to the backend's address, else 1 (the demo units' ExecCondition)")
	return cmdline{demo: demoMode, version: showVersion, checkDir: checkDir, importDir: importDir, backend: backend, usedBy: usedBy}
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("canaryd", flag.ContinueOnError)
	// A bad flag is one line; -h prints the flags.
	fs.SetOutput(io.Discard)
	opts := daemon.Options{Version: version}
	cl := declareFlags(fs, &opts)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "canaryd: %v (canaryd -h lists the flags)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "canaryd: unexpected argument %q (canaryd takes only flags)\n", fs.Arg(0))
		return 2
	}
	if !slices.Contains(panel.Modes, opts.GPIO) {
		fmt.Fprintf(stderr, "canaryd: -gpio %q: want one of %s\n", opts.GPIO, strings.Join(panel.Modes, ", "))
		return 2
	}
	if *cl.version {
		fmt.Fprintln(stdout, "canaryd", version)
		return 0
	}
	if *cl.demo {
		if err := checkDemoFlags(fs); err != nil {
			fmt.Fprintf(stderr, "canaryd: %v\n", err)
			return 2
		}
	}
	if *cl.checkDir != "" {
		return checkConfig(*cl.checkDir, stdout, stderr)
	}
	if *cl.importDir != "" {
		return importConfig(*cl.importDir, opts.ConfigDir, stdout, stderr)
	}
	// Signals are taken from the start: a SIGHUP or SIGTERM while starting
	// must not kill the process with the default action.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	opts.Logger = systemd.NewLogger(stderr, slog.LevelInfo)
	// Libraries that log with the log package (periph's GPIO drivers) write
	// journal entries too, not bare lines with a timestamp of their own.
	slog.SetDefault(opts.Logger)
	if *cl.backend != "" && *cl.usedBy != "" {
		return backendUsed(*cl.backend, opts.Listen, *cl.usedBy, stdout)
	}
	if *cl.backend != "" {
		return serveBackend(ctx, *cl.backend, opts.Listen, opts.Logger, stderr)
	}
	opts.Notifier = &systemd.Notifier{}
	inherited, err := activation.Listeners()
	if err != nil {
		fmt.Fprintf(stderr, "canaryd: socket activation: %v\n", err)
		return 1
	}
	if len(inherited) > 0 {
		// canaryd.socket holds the port across restarts: no connection is
		// refused while canaryd restarts.
		opts.ProxyListener = inherited[0]
	}

	var dm *demo.Demo
	if *cl.demo {
		if dm, err = startDemo(fs, &opts); err != nil {
			fmt.Fprintf(stderr, "canaryd -demo: %v\n", err)
			return 1
		}
		defer dm.Close()
	}

	d, err := daemon.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "canaryd: %v\n", err)
		return 1
	}
	if dm != nil {
		printDemoBanner(stdout, d, dm)
		defer printDemoFarewell(stdout, dm) // before dm.Close
	}
	go systemd.Watchdog(ctx, d.Healthy, opts.Logger)

	go func() {
		for range hup {
			d.Reload(ctx) // a rejected config is logged and shown in the status
		}
	}()
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "canaryd: %v\n", err)
		return 1
	}
	return 0
}

// checkConfig checks a config directory, or one config file, as a start
// would: the text, then the files it names and the names it listens on.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.LoadPath(path)
	if err == nil {
		err = cfg.Preflight()
	}
	if err != nil {
		fmt.Fprintf(stderr, "canaryd: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid: %s in %s\n", path, plural(len(cfg.Upstreams), "upstream"), plural(len(cfg.Files), "file"))
	return 0
}

// plural is n things, in words: "1 file", "2 files".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// importConfig installs the config from a Pi's boot partition; the unit runs
// it before each start. A refusal exits 0: canaryd must start anyway, on the
// config it had, and shows the refusal.
func importConfig(src, dst string, stdout, stderr io.Writer) int {
	what, err := config.Import(src, dst)
	switch {
	case err != nil && config.ImportRefusal(dst) != "":
		fmt.Fprintf(stderr, "canaryd: %v\n", err)
	case err != nil:
		fmt.Fprintf(stderr, "canaryd: import %s into %s: %v\n", src, dst, err)
		return 1
	case what == config.Installed:
		fmt.Fprintf(stdout, "canaryd: installed the config from %s into %s\n", src, dst)
	case what == config.Unchanged:
		fmt.Fprintf(stdout, "canaryd: %s is unchanged since it was installed; %s keeps its config\n", src, dst)
	}
	return 0
}

// serveBackend runs one demo backend alone, as a unit of its own on an
// appliance's first boot.
func serveBackend(ctx context.Context, name, listen string, log *slog.Logger, stderr io.Writer) int {
	if listen == "" {
		if listen = demo.DefaultListen(name); listen == "" {
			fmt.Fprintf(stderr, "canaryd: -demo-backend %s needs -listen ADDR (only pong-v1 and pong-v2 have a default)\n", name)
			return 2
		}
	}
	log.Info("demo backend serving", "BACKEND", name, "LISTEN", listen)
	if err := demo.Serve(ctx, name, listen); err != nil {
		fmt.Fprintf(stderr, "canaryd: -demo-backend %s: %v\n", name, err)
		return 1
	}
	return 0
}

// backendUsed tells whether the config in dir proxies to the demo backend
// name: its demo unit starts only then, so that a Pi whose config has moved
// on to the real services leaves their ports to them.
func backendUsed(name, listen, dir string, stdout io.Writer) int {
	if listen == "" {
		if listen = demo.DefaultListen(name); listen == "" {
			fmt.Fprintf(stdout, "canaryd: -demo-backend %s needs -listen ADDR (only pong-v1 and pong-v2 have a default)\n", name)
			return 2
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		fmt.Fprintf(stdout, "canaryd: demo backend %s not started: %v\n", name, err)
		return 1
	}
	for _, u := range cfg.Upstreams {
		if u.URL.Host == listen {
			return 0
		}
	}
	fmt.Fprintf(stdout, "canaryd: demo backend %s not started: no upstream in %s is at %s\n", name, dir, listen)
	return 1
}

// defaultStateDir is systemd's StateDirectory= when set, else the FHS place.
func defaultStateDir() string {
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		return filepath.SplitList(dirs)[0]
	}
	return "/var/lib/canaryd"
}
