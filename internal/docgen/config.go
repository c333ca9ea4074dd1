package docgen

import (
	"fmt"
	"strings"

	"github.com/canary-pi/canary-pi/appliance/config"
)

// KeysSource is where the config's keys are declared, for the notes that
// say so in what is made from them.
const KeysSource = "appliance/config/keys.go"

// ConfigRules are the rules of the config directory, for the reference and
// canaryd.toml(5).
var ConfigRules = []Block{
	P("canaryd reads its configuration from one directory, `/etc/canaryd` unless `canaryd -config-dir` names another, and watches it: an edit applies within a second, without dropping a request."),
	Bullet("Every `*.toml` file directly in the directory is read, in lexical order, and merged: `[[upstream]]` entries are collected from all files; a key set in two files is an error naming both places."),
	Bullet("Other files are ignored: dotfiles, `*~`, `*.swp`, `*.dpkg-*` and subdirectories."),
	Bullet("Required are `proxy.listen`, each upstream's `name`, `url` and `role`, and `canary.version` when a canary upstream exists. Every other key, and every section but `[proxy]` and `[[upstream]]`, may be left out: it then takes its default."),
	Bullet("Unknown keys, wrong types, values out of range, duplicate upstream names, bad URLs, bad pin names and an upstream that is canaryd itself (its `proxy.listen` or `admin.listen`) are errors naming the file and line."),
	Bullet("A directory that does not validate is not applied: the last good configuration keeps serving, the status LED blinks, and the error shows in `canaryctl status` and the journal (`journalctl -u canaryd`). `canaryd -check-config` checks a directory, or one file, as a start would."),
	Bullet("A key marked live applies at the next reload: an edit, `canaryctl reload` or SIGHUP. The others apply only when canaryd restarts (`systemctl restart canaryd`); until then `canaryctl status` and the journal name the changed keys that wait for it."),
	Bullet("A duration is a string of a number and a unit: `\"500ms\"`, `\"30s\"`, `\"5m\"`, `\"1h30m\"`. A relative path (`admin.socket`, `admin.token_file`) is relative to the config directory."),
}

// secondUpstream is the example's canary, beside the stable upstream that
// shows every key of [[upstream]].
var secondUpstream = [][2]string{{"name", `"w2"`}, {"url", `"http://127.0.0.3:8002"`}, {"role", `"canary"`}}

// exampleWidth bounds the example's comment lines: indented in a manual
// page, they still fit 80 columns.
const exampleWidth = 64

// Example is a complete config file: every key, the required ones set and
// the others commented out at their default or an example value.
func Example() string { return example(false) }

// example is Example, or with all, every key set.
func example(all bool) string {
	var b strings.Builder
	b.WriteString(comment("Every key of canaryd's configuration: the required keys are set, the others commented out at their default or an example value."))
	for _, s := range config.Reference() {
		b.WriteString("\n" + comment(s.Doc) + s.Header() + "\n")
		for _, k := range s.Keys {
			if !k.Required && !all {
				b.WriteString("# ")
			}
			fmt.Fprintf(&b, "%s = %s\n", k.Name, k.Example)
		}
		if s.Array {
			b.WriteString("\n" + s.Header() + "\n")
			for _, kv := range secondUpstream {
				fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
			}
		}
	}
	return b.String()
}

// comment is text as TOML comment lines, wrapped.
func comment(text string) string {
	var b strings.Builder
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > exampleWidth && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	return b.String() + line + "\n"
}

// applies says when a change of k takes effect.
func applies(k config.Key) string {
	if k.Live {
		return "live"
	}
	return "restart"
}

// defaultText is k's default for a table: the value, "required", or
// "none".
func defaultText(k config.Key) string {
	switch {
	case k.Required:
		return "required"
	case k.Default == "":
		return "none"
	}
	return "`" + k.Default + "`"
}

// ConfigReference is docs/configuration.md.
func ConfigReference() []byte {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	fmt.Fprintf(&b, "<!-- Generated from %s by internal/docgen: do not edit; run make docs. -->\n\n", KeysSource)
	b.WriteString("Every key of canaryd's configuration, by section, with its type, its default, whether a\n" +
		"change applies live (at the next reload) or at a restart, and what it does. The same\n" +
		"reference is the manual page canaryd.toml(5) (`man canaryd.toml`).\n\n")
	b.WriteString("## The config directory\n\n")
	b.WriteString(Markdown(ConfigRules))
	b.WriteString("## Example\n\n```toml\n" + Example() + "```\n\n")
	b.WriteString("## Keys\n")
	for _, s := range config.Reference() {
		fmt.Fprintf(&b, "\n### %s\n\n%s\n\n", s.Header(), s.Doc)
		b.WriteString("| key | type | default | applies | what it does |\n")
		b.WriteString("| --- | --- | --- | --- | --- |\n")
		for _, k := range s.Keys {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k, k.Type, defaultText(k), applies(k),
				strings.ReplaceAll(k.Doc, "|", `\|`))
		}
	}
	return []byte(b.String())
}

// ConfigPage is canaryd.toml(5).
func ConfigPage() Page {
	var keys []Block
	for _, s := range config.Reference() {
		keys = append(keys, Sub(s.Header()), P(s.Doc))
		for _, k := range s.Keys {
			// A required key's doc says so, and a key without a
			// default is off, or empty, when no file sets it.
			text := capitalize(k.Doc) + "."
			if k.Default != "" && !k.Required {
				text += " Default `" + k.Default + "`."
			}
			if k.Live {
				text += " A change applies at the next reload."
			} else {
				text += " A change applies when canaryd restarts."
			}
			keys = append(keys, Item("`"+k.Name+"` ("+k.Type+")", text))
		}
	}
	return Page{
		Name:     "canaryd.toml",
		Section:  "5",
		Summary:  "configuration of canaryd, the canary-release proxy",
		Manual:   "File Formats",
		Synopsis: []string{"`/etc/canaryd/*.toml`"},
		Sections: []Section{
			{"DESCRIPTION", append([]Block{P("canaryd(8) is configured by TOML files in its config directory. This page lists every key, by section: its type, its default, and whether a change applies at the next reload or only when canaryd restarts.")}, ConfigRules...)},
			{"KEYS", keys},
			{"FILES", Files},
			{"ENVIRONMENT", Environment},
			{"EXIT STATUS", []Block{
				P("`canaryd -check-config` {path} checks a config directory, or one file, as a start would:"),
				Item("0", "It is valid; one line says how many upstreams in how many files."),
				Item("1", "It is not; one line on stderr names the file and line to fix."),
			}},
			{"EXAMPLES", []Block{
				P("A complete configuration, every key shown:"),
				Code(Example()),
				P("After an edit, check it and see it applied:"),
				Code("canaryd -check-config /etc/canaryd\ncanaryctl status\njournalctl -u canaryd -n 20"),
			}},
			{"SEE ALSO", []Block{P(SeeAlso("canaryd.toml", "5"))}},
		},
	}
}

// capitalize upper-cases s's first letter, for a doc that starts a
// sentence.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
