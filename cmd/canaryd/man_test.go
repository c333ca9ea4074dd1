package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/daemon"
	"github.com/canary-pi/canary-pi/internal/docgen"
)

// flagNotes say more about a flag in canaryd(8) than its one-line usage.
var flagNotes = map[string]string{
	"state-dir":     "Under systemd, the first path in `$STATE_DIRECTORY` (the unit's `StateDirectory=`).",
	"gpio":          "`auto`: the real pins where the kernel has a GPIO chip with them, else simulated ones; `periph`: the real pins, or an error naming the pin; `sim`: simulated pins, pressed with `canaryctl button`; `off`: no front panel.",
	"listen":        "Without it, `proxy.listen` from the config.",
	"demo":          "The proxy on `127.0.0.1:8080` (or `-listen`), the admin socket in `$XDG_RUNTIME_DIR/canaryd-demo`; the config and the state there too, removed by Ctrl-C, or in the `-state-dir` given, kept for the next run. canaryd prints what to curl, what to edit and how to reach it with canaryctl. `-config-dir`, `-check-config`, `-import-config` and `-demo-backend` do not go with it.",
	"import-config": "The unit runs it before each start with `/boot/firmware/canaryd`; a config that does not validate is refused with one line and exits 0, so that canaryd starts on the one it had.",
}

// manPage is canaryd(8), its options from fs as declareFlags declares them.
func manPage(fs *flag.FlagSet) docgen.Page {
	// opt is a flag as the synopsis shows it: -name and its argument.
	opt := func(name string) string {
		f := fs.Lookup(name)
		if f == nil {
			panic("canaryd(8): no flag -" + name)
		}
		if arg, _ := flag.UnquoteUsage(f); arg != "" {
			return fmt.Sprintf("`-%s` {%s}", name, arg)
		}
		return "`-" + name + "`"
	}
	var options []docgen.Block
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		text := strings.ToUpper(usage[:1]) + usage[1:] + "."
		if f.DefValue != "" && f.DefValue != "false" {
			text += " Default `" + f.DefValue + "`."
		}
		if note := flagNotes[f.Name]; note != "" {
			text += " " + note
		}
		options = append(options, docgen.Item(opt(f.Name), text))
	})
	options = append(options, docgen.Item("`-h`, `-help`", "Print the flags and exit."))

	return docgen.Page{
		Name:    "canaryd",
		Section: "8",
		Summary: "canary-release proxy daemon for the Raspberry Pi",
		Manual:  "System Administration",
		Synopsis: []string{
			"`canaryd` [" + opt("config-dir") + "] [" + opt("state-dir") + "] [" + opt("gpio") + "] [" + opt("listen") + "]",
			"`canaryd` " + opt("demo") + " [" + opt("listen") + "] [" + opt("state-dir") + "]",
			"`canaryd` " + opt("check-config"),
			"`canaryd` " + opt("import-config") + " [" + opt("config-dir") + "]",
			"`canaryd` " + opt("demo-backend") + " [" + opt("listen") + "] [" + opt("demo-used-by") + "]",
			"`canaryd` " + opt("version"),
		},
		Sections: []docgen.Section{
			{Title: "DESCRIPTION", Blocks: []docgen.Block{
				docgen.P("canaryd is the canary-pi appliance's daemon: an HTTP reverse proxy that splits the traffic of a service between its stable release and a canary, and judges the canary by its errors and its latency against the stable's. Without a rollout's steps or sticky users, it picks upstreams by nginx's smooth weighted round-robin: the same picks as nginx's `upstream` block with the same `weight=` values."),
				docgen.P("A rollback sends every new request to the stable upstreams at once; requests in flight finish. It comes from `canaryctl rollback`, the status page, the button on the Pi's GPIO pins or, with `canary.auto_rollback`, a bad verdict. It is latched in the state directory: it survives restarts and reboots until `canaryctl resume` or a new `canary.version`. Every rollback writes an incident report: what the canary served, for `canaryctl incidents`."),
				docgen.P("canaryd watches its config directory (canaryd.toml(5)): an edit applies within a second, without dropping a request, and a directory that does not validate is refused while the last good configuration keeps serving. SIGHUP re-reads it at once; SIGTERM or SIGINT stops canaryd."),
				docgen.P("The front panel is a status LED, a two-coloured canary LED and a button, on the pins `[gpio]` names. The status LED is green while canaryd serves, and blinks while it serves the last good config after a bad one; the canary LED is green while the canary serves, red on a bad verdict, and blinks red once rolled back. A press of the button rolls back; a long press (3 s or more) resumes."),
				docgen.P("Under systemd (`canaryd.service`, which the package enables), canaryd tells systemd when it is ready, keeps its watchdog and logs to the journal; elsewhere it logs to stderr. canaryctl(8) talks to it on the admin socket; `admin.listen` serves the status page, Prometheus metrics at `/metrics` and the same admin API over TCP."),
			}},
			{Title: "OPTIONS", Blocks: options},
			{Title: "FILES", Blocks: docgen.Files},
			{Title: "ENVIRONMENT", Blocks: docgen.Environment},
			{Title: "EXIT STATUS", Blocks: []docgen.Block{
				docgen.Item("0", "A clean stop, on SIGTERM or SIGINT; `-h` and `-version`; `-check-config`: the config is valid; `-import-config`: the config was installed, was unchanged, or was refused (the refusal on stderr)."),
				docgen.Item("1", "canaryd cannot start, with a one-line reason on stderr: no valid config at all, the port in use, the admin socket cannot be made; `-check-config`: the config is not valid; `-import-config`: it could not be installed."),
				docgen.Item("2", "A bad flag or argument, with a one-line reason on stderr."),
			}},
			{Title: "EXAMPLES", Blocks: []docgen.Block{
				docgen.P("The appliance's daemon, its state and its log:"),
				docgen.Code("systemctl status canaryd\ncanaryctl status\njournalctl -u canaryd -f"),
				docgen.P("Check an edited config before canaryd sees it, and restart after a key that needs it:"),
				docgen.Code("canaryd -check-config /etc/canaryd\nsystemctl restart canaryd"),
				docgen.P("Try it on any machine, without a config: two demo backends, pong-v1 and pong-v2, weighted 10 to 5:"),
				docgen.Code("canaryd -demo\ncurl http://127.0.0.1:8080/ping"),
			}},
			{Title: "SEE ALSO", Blocks: []docgen.Block{docgen.P(docgen.SeeAlso("canaryd", "8"))}},
		},
	}
}

func TestManPageIsCurrentAndRenders(t *testing.T) {
	// The default of -state-dir as a machine without systemd has it.
	t.Setenv("STATE_DIRECTORY", "")
	fs := flag.NewFlagSet("canaryd", flag.ContinueOnError)
	declareFlags(fs, &daemon.Options{})
	for name := range flagNotes {
		if fs.Lookup(name) == nil {
			t.Errorf("flagNotes: canaryd has no flag -%s", name)
		}
	}
	// A flag's argument is named in its usage, as `directory`: the
	// flag package would call it "string".
	fs.VisitAll(func(f *flag.Flag) {
		if arg, _ := flag.UnquoteUsage(f); arg == "string" || arg == "value" || arg == "int" {
			t.Errorf("-%s: its usage names no argument: quote one word of it with backquotes", f.Name)
		}
	})
	docgen.Check(t, "docs/man/canaryd.8", manPage(fs).Roff("cmd/canaryd (its flags) and man_test.go"))
	docgen.Renders(t, filepath.Join(docgen.Root(t), "docs/man/canaryd.8"))
}
