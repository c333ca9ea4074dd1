// Command canaryctl is the operator's command line for a running canaryd:
// it shows the status and rolls back, resumes, promotes and reloads through
// the daemon's admin socket.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// timeout bounds a whole invocation. It outlasts the daemon's own write
// timeout, so a slow command ends with the daemon's answer, not ours.
const timeout = 75 * time.Second

// Exit statuses, as the contract fixes them.
const (
	exitOK          = 0
	exitRefused     = 1 // the daemon refused, or a known command was misused
	exitUnreachable = 2 // no daemon answered
	exitUsage       = 2 // no or an unknown command, as the flag package exits
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// cli is one invocation: where to write and which daemon to ask.
type cli struct {
	stdout, stderr io.Writer
	socket         string
	client         *admin.Client
}

// command is one canaryctl command. flags declares its flags on fs; run
// gets the positional arguments left after them.
type command struct {
	args  string // the synopsis after the name
	help  string // one line, for the usage and canaryctl(8)
	nargs int    // positional arguments it takes; -1: any, run checks them
	flags func(fs *flag.FlagSet)
	run   func(ctx context.Context, c *cli, args []string) error
}

// usage lists the commands, from their table.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: canaryctl [-socket PATH] COMMAND [flags]\n\ncommands:\n")
	table := commands()
	for _, name := range slices.Sorted(maps.Keys(table)) {
		b.WriteString("  " + table[name].line(name) + "\n")
	}
	fmt.Fprintf(&b, "\nThe socket is -socket, else $CANARYD_SOCKET, else %s.\n", config.DefaultSocket)
	return b.String()
}

// line is the command's line in the usage: its synopsis, then its help in
// a column, or under it when the synopsis is too long for the column.
func (cmd command) line(name string) string {
	const column = 25
	synopsis := strings.TrimSpace(name + " " + cmd.args)
	if len(synopsis) >= column {
		return synopsis + "\n" + strings.Repeat(" ", column+2) + cmd.help
	}
	return fmt.Sprintf("%-*s%s", column, synopsis, cmd.help)
}

// unknownCommand is a command name that is not in the table.
type unknownCommand string

func (u unknownCommand) Error() string { return fmt.Sprintf("unknown command %q", string(u)) }

// globalFlags declares the flags before the command on fs: run parses
// them, and canaryctl(8) lists them (man_test.go).
func (c *cli) globalFlags(fs *flag.FlagSet) (showVersion *bool) {
	fs.StringVar(&c.socket, "socket", "", "the daemon's admin `socket`")
	return fs.Bool("version", false, "print canaryctl's version")
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}

	global := flag.NewFlagSet("canaryctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	showVersion := c.globalFlags(global)
	switch err := global.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage())
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "canaryctl: %v\n%s", err, usage())
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "canaryctl %s\n", version)
		return exitOK
	}
	if global.NArg() == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}

	name := global.Arg(0)
	cmd, ok := commands()[name]
	if !ok {
		return c.exit(unknownCommand(name))
	}
	flags := flag.NewFlagSet("canaryctl "+name, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	// Accepted after the command too, where it is easy to add when
	// repeating the previous command line.
	flags.StringVar(&c.socket, "socket", c.socket, "the daemon's admin socket")
	if cmd.flags != nil {
		cmd.flags(flags)
	}
	pos, err := parseInterspersed(flags, global.Args()[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: canaryctl %s %s\n", name, cmd.args)
		return exitOK
	}
	if err == nil && cmd.nargs >= 0 && len(pos) != cmd.nargs {
		err = fmt.Errorf("want %d argument(s), got %d", cmd.nargs, len(pos))
	}
	if err != nil {
		fmt.Fprintf(stderr, "canaryctl %s: %v (usage: canaryctl %s %s)\n", name, err, name, strings.TrimSpace(cmd.args))
		return exitRefused
	}

	if c.socket == "" {
		c.socket = getenv("CANARYD_SOCKET")
	}
	if c.socket == "" {
		c.socket = config.DefaultSocket
	}
	c.client = admin.NewClient(c.socket)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.exit(cmd.run(ctx, c, pos))
}

// parseInterspersed parses flags anywhere among the arguments, so that
// "incident 7 --json" works as well as "incident --json 7".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// socketGroup names the group that may use the socket at path: its own
// group, unless that is root's or cannot be read (the directory is closed
// to us), and then the package's.
func socketGroup(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return config.DefaultSocketGroup
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Gid == 0 {
		return config.DefaultSocketGroup
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10))
	if err != nil {
		return config.DefaultSocketGroup
	}
	return g.Name
}

// exit reports err on one line and maps it to the contract's exit status.
func (c *cli) exit(err error) int {
	var apiErr *admin.Error
	var unknown unknownCommand
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &unknown):
		fmt.Fprintf(c.stderr, "canaryctl: %v\n%s", err, usage())
		return exitUsage
	case errors.Is(err, admin.ErrUnreachable) && errors.Is(err, fs.ErrPermission):
		g := socketGroup(c.socket)
		fmt.Fprintf(c.stderr, "canaryctl: permission denied on %s: run as root or add yourself to group %s (sudo usermod -aG %s $USER, then log in again)\n", c.socket, g, g)
		return exitUnreachable
	case errors.Is(err, admin.ErrUnreachable):
		fmt.Fprintf(c.stderr, "canaryctl: %v (is canaryd running? try -socket or $CANARYD_SOCKET)\n", err)
		return exitUnreachable
	case errors.As(err, &apiErr):
		fmt.Fprintf(c.stderr, "canaryctl: %s\n", apiErr.Reason)
		return exitRefused
	default:
		fmt.Fprintf(c.stderr, "canaryctl: %v\n", err)
		return exitRefused
	}
}

func commands() map[string]command {
	var jsonOut, csvOut, long, fleetOut bool
	jsonFlag := func(fs *flag.FlagSet) { fs.BoolVar(&jsonOut, "json", false, "print JSON") }
	mutation := func(done, help string, do func(*admin.Client, context.Context) (admin.Status, error)) command {
		return command{help: help, run: func(ctx context.Context, c *cli, _ []string) error {
			st, err := do(c.client, ctx)
			if err != nil {
				return err
			}
			line := done + ": " + where(st, "canary "+st.CanaryVersion)
			if st.Rollout != nil {
				line += "; rollout " + rolloutLine(st.Rollout, time.Now())
			}
			fmt.Fprintln(c.stdout, line)
			return nil
		}}
	}
	return map[string]command{
		"status": {args: "[--json]", help: "what the appliance is doing", flags: jsonFlag, run: func(ctx context.Context, c *cli, _ []string) error {
			if jsonOut {
				// The daemon's own bytes, so fields newer than this
				// canaryctl still show.
				return c.printJSON(c.client.Get(ctx, "/v1/status"))
			}
			st, err := c.client.Status(ctx)
			if err != nil {
				return err
			}
			return printStatus(c.stdout, st, time.Now())
		}},
		"rollback": mutation("rolled back", "all new requests to stable, latched", (*admin.Client).Rollback),
		"resume":   mutation("resumed", "clear a rollback or a pause", (*admin.Client).Resume),
		"promote":  mutation("promoted", "the canary takes all traffic", (*admin.Client).Promote),
		"pause":    mutation("paused", "hold a progressive rollout at its step", (*admin.Client).Pause),
		"reload": {help: "re-read the config directory now", run: func(ctx context.Context, c *cli, _ []string) error {
			st, err := c.client.Reload(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "reloaded: config generation %d, %s\n", st.Config.Generation, where(st, "canary "+st.CanaryVersion))
			return nil
		}},
		"button": {
			args:  "[--long]",
			help:  "press the button: roll back (--long: resume)",
			flags: func(fs *flag.FlagSet) { fs.BoolVar(&long, "long", false, "a long press (3 s or more): resume") },
			run: func(ctx context.Context, c *cli, _ []string) error {
				st, err := c.client.Button(ctx, long)
				if err != nil {
					return err
				}
				press := "button pressed"
				if long {
					press = "button long-pressed"
				}
				fmt.Fprintf(c.stdout, "%s: %s\n", press, where(st, "canary "+st.CanaryVersion))
				return nil
			},
		},
		"incidents": {
			args: "[--json] [--fleet]",
			help: "incident reports (--fleet: every member's)",
			flags: func(fs *flag.FlagSet) {
				jsonFlag(fs)
				fs.BoolVar(&fleetOut, "fleet", false, "every member's reports")
			},
			run: func(ctx context.Context, c *cli, _ []string) error {
				if fleetOut {
					body, err := c.client.Get(ctx, "/v1/incidents?fleet=1")
					if jsonOut || err != nil {
						return c.printJSON(body, err)
					}
					return c.printFleetIncidents(body)
				}
				body, err := c.incidents(ctx, "/v1/incidents")
				if jsonOut || err != nil {
					return c.printJSON(body, err)
				}
				return c.printIncidents(body)
			},
		},
		"incident": {
			args:  "[--json|--csv] ID",
			help:  "one report: text, JSON, or its writes as CSV",
			nargs: 1,
			flags: func(fs *flag.FlagSet) {
				jsonFlag(fs)
				fs.BoolVar(&csvOut, "csv", false, "print CSV")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				path := "/v1/incidents/" + url.PathEscape(args[0])
				switch {
				case jsonOut && csvOut:
					return errors.New("incident: --json or --csv, not both")
				case jsonOut:
					return c.printJSON(c.incidents(ctx, path))
				case csvOut:
					path += "?format=csv"
				default:
					// The daemon renders the text, for canaryctl and the
					// status page alike.
					path += "?format=text"
				}
				body, err := c.incidents(ctx, path)
				if err != nil {
					return err
				}
				_, err = c.stdout.Write(body)
				return err
			},
		},
		"fleet": {args: "[--json]", help: "the members of this fleet's release", flags: jsonFlag, run: func(ctx context.Context, c *cli, _ []string) error {
			body, err := c.client.Get(ctx, "/v1/fleet")
			if jsonOut || err != nil {
				return c.printJSON(body, err)
			}
			return c.printFleet(body)
		}},
		"from-nginx": fromNginx(),
		"version": {help: "print canaryctl's version", run: func(_ context.Context, c *cli, _ []string) error {
			fmt.Fprintf(c.stdout, "canaryctl %s\n", version)
			return nil
		}},
		"help": {args: "[COMMAND]", help: "this list, or one command's line", nargs: -1, run: func(_ context.Context, c *cli, args []string) error {
			switch len(args) {
			case 0:
				fmt.Fprint(c.stdout, usage())
				return nil
			case 1:
				cmd, ok := commands()[args[0]]
				if !ok {
					return unknownCommand(args[0])
				}
				fmt.Fprintln(c.stdout, cmd.line(args[0]))
				return nil
			}
			return fmt.Errorf("help: want a command or none, got %q (usage: canaryctl help [COMMAND])", args)
		}},
	}
}

// where says in a few words where new requests go now; canary names the
// canary ("canary v2", or just "canary" where the version is shown).
func where(st admin.Status, canary string) string {
	switch st.State {
	case state.NoCanary:
		return "all traffic to stable (no canary configured)"
	case state.Canary:
		line := fmt.Sprintf("%s gets %s of new requests", canary, percent(st.CanaryPercent))
		if st.CanaryServed != nil {
			line += fmt.Sprintf(" (served %s of the window's)", percent(*st.CanaryServed))
		}
		return line
	case state.RolledBack:
		return fmt.Sprintf("all traffic to stable (%s latched)", canary)
	case state.Promoted:
		return canary + " takes all traffic"
	}
	return fmt.Sprintf("unknown state %q (a newer canaryd?)", st.State)
}

// percent prints a share to a tenth: 33.3%, 5%, 100%.
func percent(p float64) string {
	return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64) + "%"
}

// evidenceLine is the verdict's evidence for people: "errors 180x (bad at
// 150x), latency 0.9x (bad at 300x); since 10:00:00, false_alarm 0.01".
func evidenceLine(v *admin.Verdict) string {
	tests := []string{"errors " + analysis.Times(v.Errors.Evidence) + " (bad at " + analysis.Times(v.Errors.Threshold) + ")"}
	if l := v.Latency; l != nil {
		tests = append(tests, "latency "+analysis.Times(l.Evidence)+" (bad at "+analysis.Times(l.Threshold)+")")
	}
	line := strings.Join(tests, ", ") + "; false_alarm " + strconv.FormatFloat(v.FalseAlarm, 'g', -1, 64)
	if v.Since != "" {
		line += ", since " + v.Since
	}
	return line
}

// printStatus prints st for people; now is the clock the time to the next
// step is counted on.
func printStatus(w io.Writer, st admin.Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := string(st.State)
	if st.State != state.NoCanary {
		mode += " (" + st.CanaryVersion + ")"
	}
	fmt.Fprintf(tw, "state\t%s, %s\n", mode, where(st, "canary"))
	if l := st.Latch; l != nil {
		fmt.Fprintf(tw, "latch\t%s %s by %s at %s\n", l.State, l.Version, l.Cause.Who(), l.At)
	}
	if r := st.Rollout; r != nil {
		fmt.Fprintf(tw, "rollout\t%s\n", rolloutLine(r, now))
	}
	if v := st.Verdict; v != nil {
		auto := "auto_rollback off"
		if v.AutoRollback {
			auto = "auto_rollback on"
		}
		fmt.Fprintf(tw, "verdict\t%s (%s): %s\n", v.State, auto, v.Reason)
		if v.Errors != nil {
			fmt.Fprintf(tw, "evidence\t%s\n", evidenceLine(v))
		}
	}
	cfg := "ok"
	if st.Config.Error != "" {
		cfg = "REJECTED: " + st.Config.Error + " (serving the last good config)"
	}
	if len(st.Pending) > 0 {
		cfg += "; " + strings.Join(st.Pending, ", ") + " changed: waits for a restart (systemctl restart canaryd)"
	}
	fmt.Fprintf(tw, "config\tgeneration %d, %s\n", st.Config.Generation, cfg)
	fmt.Fprintf(tw, "leds\tstatus %s, canary %s\n", st.LEDs.Status, st.LEDs.Canary)
	if f := st.Fleet; f != nil {
		reach := "connected"
		if !f.Connected {
			reach = "UNREACHABLE: rollbacks act here and wait to be told; resume and promote are refused"
		}
		fmt.Fprintf(tw, "fleet\t%s in release %s, %s; %d members live (canaryctl fleet)\n", f.Name, f.Release, reach, f.Members)
	}
	if st.Version != "" {
		daemon := "canaryd " + st.Version
		if st.Listen != "" {
			daemon += ", proxy on " + st.Listen
		}
		if st.GPIO != "" {
			daemon += ", gpio " + st.GPIO
		}
		if st.StartedAt != "" {
			daemon += ", up since " + st.StartedAt
		}
		fmt.Fprintf(tw, "daemon\t%s\n", daemon)
	}
	fmt.Fprintf(tw, "upstream\trole\tweight\trequests\terrors\thealthy\turl\n")
	for _, u := range st.Upstreams {
		healthy := "no"
		if u.Healthy {
			healthy = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", u.Name, u.Role, u.Weight, u.Requests, u.Errors, healthy, u.URL)
	}
	return tw.Flush()
}

// rolloutLine is e.g. "step 1 of 2 (10%), next 50% in 4m10s at
// 2026-12-01T10:05:00Z", or the step and why it holds.
func rolloutLine(r *admin.Rollout, now time.Time) string {
	line := fmt.Sprintf("step %d of %d (%s) since %s", r.Step+1, len(r.Steps), percent(r.Percent), r.Entered)
	switch {
	case r.Holding != "":
		line += ", holding: " + r.Holding
	case r.NextAt != nil && r.Step+1 < len(r.Steps):
		in := "due now"
		if at, err := time.Parse(time.RFC3339, *r.NextAt); err == nil && at.After(now) {
			in = "in " + at.Sub(now).Round(time.Second).String()
		}
		line += fmt.Sprintf(", next %s %s at %s", percent(r.Steps[r.Step+1]), in, *r.NextAt)
	}
	return line
}

// printIncidents lists the incidents in body, newest first as the daemon
// sends them; --json shows every field.
func (c *cli) printIncidents(body []byte) error {
	var incidents []incident.Summary
	if err := json.Unmarshal(body, &incidents); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", c.socket, err)
	}
	if len(incidents) == 0 {
		fmt.Fprintln(c.stdout, "no incidents: no rollbacks yet")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tversion\tcause\tstarted\trolled back\twrites\tusers")
	for _, in := range incidents {
		writes := strconv.Itoa(in.Requests)
		if in.Lost > 0 {
			writes += " (incomplete)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", in.ID, in.Version, in.Cause,
			in.Started.UTC().Format(time.RFC3339), in.RolledBack.UTC().Format(time.RFC3339), writes, in.Users)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "writes: the POST, PUT, PATCH and DELETE requests the canary served; `canaryctl incident ID` lists them")
	return nil
}

// printJSON prints a JSON answer from the daemon, indented; it takes the
// getter's results as they come.
func (c *cli) printJSON(body []byte, err error) error {
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(body), "", "  "); err != nil {
		return fmt.Errorf("unexpected answer from %s: %v", c.socket, err)
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(c.stdout)
	return err
}

// incidents gets path under /v1/incidents. A canaryd without incident
// reports answers 404 there; that becomes a message saying so rather than
// "no such endpoint".
func (c *cli) incidents(ctx context.Context, path string) ([]byte, error) {
	body, err := c.client.Get(ctx, path)
	var apiErr *admin.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		return body, err
	}
	if path != "/v1/incidents" {
		// A missing incident is a 404 too; only a daemon without the
		// list lacks the feature.
		if _, listErr := c.client.Get(ctx, "/v1/incidents"); listErr == nil {
			return nil, err
		}
	}
	return nil, errors.New("incidents are not recorded by this canaryd yet")
}
