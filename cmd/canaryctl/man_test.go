package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/internal/docgen"
)

// commandNotes say more about a command in canaryctl(8) than its help line.
var commandNotes = map[string]string{
	"status":     "The state and where new requests go, the latch, the rollout, the verdict and its evidence, the config's generation (why the last edit was rejected, which changed keys wait for a restart), the LEDs, the daemon, and each upstream's requests, errors and health. `--json` prints the daemon's status object as it sends it.",
	"rollback":   "No new request reaches a canary upstream; requests in flight finish. The rollback is latched and persisted: it survives restarts, reboots and reloads with the same `canary.version`.",
	"resume":     "The canary takes its configured share again; a paused rollout goes on.",
	"promote":    "Persisted. Refused while rolled back: resume first.",
	"reload":     "Refused, with the file and line to fix, when the directory does not validate: the last good config keeps serving.",
	"pause":      "Refused without `canary.steps`; `resume` releases it.",
	"button":     "Through the same debounce path as the button on the Pi: a press rolls back; `--long`, a press of 3 s or more, resumes.",
	"incidents":  "Newest first. `--json`: an array of objects with at least `id`, `cause`, `version`, `started` and `rolled_back`. `--fleet`: every member's reports, as the members told the fleet of them, each with its `member`.",
	"incident":   "{ID} is one of `canaryctl incidents`. `--json`: an object with at least `requests`, the non-idempotent requests the canary served, each with `request_id`, `method`, `path`, `status` and `time`; `--csv`: those requests as CSV.",
	"fleet":      "With a `[fleet]` section: each member of the release, as it last reported itself once a second: connected or when last seen, its state, verdict, canary and share, rollout step and requests a minute. `--json`: an array of objects with at least `name`, `connected`, `state`, `verdict` and `last_seen`. Refused (exit 1) by a canaryd in no fleet.",
	"help":       "Prints the usage, as `-h` does, and exits 0.",
	"from-nginx": "Converts the nginx config's upstream, server and location; `--canary` names the canary servers, `--upstream` the block to convert. What has no equivalent is a comment saying why. The result is checked to load before it is printed. {FILE} `-` reads stdin. Works offline: no daemon needed.",
}

// placeholders are the words of a synopsis to replace, as COMMAND or ID.
var placeholders = regexp.MustCompile(`\b[A-Z][A-Z_]+\b`)

// manPage is canaryctl(8), its options from global and its commands from
// their table.
func manPage(global *flag.FlagSet) docgen.Page {
	var options []docgen.Block
	global.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		tag := "`-" + f.Name + "`"
		if arg != "" {
			tag += " {" + arg + "}"
		}
		options = append(options, docgen.Item(tag, strings.ToUpper(usage[:1])+usage[1:]+"."))
	})
	options = append(options, docgen.Item("`-h`, `--help`", "Print the usage and exit 0, as `help` does."))

	var cmds []docgen.Block
	table := commands()
	for _, name := range slices.Sorted(maps.Keys(table)) {
		cmd := table[name]
		text := strings.ToUpper(cmd.help[:1]) + cmd.help[1:] + "."
		if note := commandNotes[name]; note != "" {
			text += " " + note
		}
		tag := "`" + name + "`"
		if cmd.args != "" {
			tag += " " + placeholders.ReplaceAllString(cmd.args, "{$0}")
		}
		cmds = append(cmds, docgen.Item(tag, text))
	}

	return docgen.Page{
		Name:     "canaryctl",
		Section:  "8",
		Summary:  "control a running canaryd: status, rollback, resume, promote",
		Manual:   "System Administration",
		Synopsis: []string{"`canaryctl` [`-socket` {socket}] {command} [{flags}] [{arguments}]", "`canaryctl help` [{command}]"},
		Sections: []docgen.Section{
			{Title: "DESCRIPTION", Blocks: []docgen.Block{
				docgen.P("canaryctl is the operator's command line for a running canaryd(8): it shows what the appliance is doing, and rolls back, resumes, promotes and reloads, through the daemon's admin socket. A command returns once the daemon has acted, so a `status` right after shows the effect."),
				docgen.P("The socket is `-socket`, else `$CANARYD_SOCKET`, else `" + config.DefaultSocket + "`. The members of its group, `" + config.DefaultSocketGroup + "`, may use it: `sudo usermod -aG " + config.DefaultSocketGroup + " $USER`, then log in again."),
				docgen.P("A command's flags may come before or after its arguments, and `-socket` after the command too. A flag takes one dash or two: `-json` is `--json`."),
			}},
			{Title: "OPTIONS", Blocks: options},
			{Title: "COMMANDS", Blocks: cmds},
			{Title: "FILES", Blocks: docgen.Files},
			{Title: "ENVIRONMENT", Blocks: docgen.Environment},
			{Title: "EXIT STATUS", Blocks: []docgen.Block{
				docgen.Item(fmt.Sprint(exitOK), "Success; `help`, `-h` and `version` too."),
				docgen.Item(fmt.Sprint(exitRefused), "The daemon refused, or the command failed, with a one-line reason on stderr: a `reload` of a directory that does not validate, a `promote` while rolled back (resume first), a `pause` without a rollout, a `from-nginx` of a config it cannot convert. Also a command misused: a flag it does not know, or the wrong number of arguments."),
				docgen.Item(fmt.Sprint(exitUnreachable), "No daemon answered on the socket, with a one-line reason on stderr (is canaryd running? which group to join?); or no command, an unknown one, or a bad flag before it, with the usage on stderr."),
			}},
			{Title: "EXAMPLES", Blocks: []docgen.Block{
				docgen.P("What the appliance is doing, then roll the canary back, and let it serve again once fixed:"),
				docgen.Code("canaryctl status\ncanaryctl rollback\ncanaryctl resume"),
				docgen.P("What the canary served before a rollback, for the users it touched:"),
				docgen.Code("canaryctl incidents\ncanaryctl incident --csv ID > writes.csv"),
				docgen.P("The status as JSON, for a script; the status of a daemon on another socket, such as the one `canaryd -demo` prints:"),
				docgen.Code("canaryctl status --json | jq .verdict\ncanaryctl -socket PATH status"),
			}},
			{Title: "SEE ALSO", Blocks: []docgen.Block{docgen.P(docgen.SeeAlso("canaryctl", "8"))}},
		},
	}
}

func TestManPageIsCurrentAndRenders(t *testing.T) {
	for name := range commandNotes {
		if _, ok := commands()[name]; !ok {
			t.Errorf("commandNotes: canaryctl has no command %s", name)
		}
	}
	global := flag.NewFlagSet("canaryctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	(&cli{}).globalFlags(global)
	docgen.Check(t, "docs/man/canaryctl.8", manPage(global).Roff("cmd/canaryctl (its flags and commands) and man_test.go"))
	docgen.Renders(t, filepath.Join(docgen.Root(t), "docs/man/canaryctl.8"))
}
