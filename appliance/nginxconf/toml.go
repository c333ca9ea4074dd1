package nginxconf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// setting is one key of the output, with the comment lines above it that
// say where it came from.
type setting struct {
	key, value string // value in TOML syntax
	comments   []string
	trailing   string // a short comment after the value
}

// note says that something in the nginx config did not carry over as it
// was: what, as written, and why. Notes with the same reason are one line.
type note struct {
	what []string
	why  string
}

func (n *note) String() string { return "nginx: " + strings.Join(n.what, "; ") + ": " + n.why }

// noEquivalent is the reason for what canaryd knows nothing like; each
// such directive is a line of its own.
const noEquivalent = "no equivalent in canaryd"

// notes is one part of the output's comments, in the order they came.
type notes []*note

func (ns *notes) add(what, why string) {
	if why != noEquivalent {
		for _, n := range *ns {
			if n.why == why {
				n.what = append(n.what, what)
				return
			}
		}
	}
	*ns = append(*ns, &note{what: []string{what}, why: why})
}

// entry is one [[upstream]] of the output, or a server left out of it.
type entry struct {
	comments []string
	notes    notes
	settings []setting // none: the server is left out
}

// render writes the config: the header and the top notes, then [proxy],
// [admin], the upstreams and [canary], each with its comments.
func (c *conversion) render() string {
	var b strings.Builder
	// One line however long the path: what made the file, for whoever
	// reads or greps it.
	b.WriteString("# canaryd.toml converted from " + printable(c.file) + " by canaryctl from-nginx\n")
	for _, line := range c.topComments {
		comment(&b, line)
	}
	renderNotes(&b, c.topNotes)

	b.WriteString("\n[proxy]\n")
	renderSettings(&b, c.proxy)
	if len(c.proxyNotes) > 0 {
		b.WriteString("\n")
		renderNotes(&b, c.proxyNotes)
	}
	if len(c.admin) > 0 {
		b.WriteString("\n[admin]\n")
		renderSettings(&b, c.admin)
	}

	b.WriteString("\n")
	for _, line := range c.upstreamComments {
		comment(&b, line)
	}
	renderNotes(&b, c.upstreamNotes)
	for _, e := range c.entries {
		b.WriteString("\n")
		for _, line := range e.comments {
			comment(&b, line)
		}
		renderNotes(&b, e.notes)
		if len(e.settings) > 0 {
			b.WriteString("[[upstream]]\n")
			renderSettings(&b, e.settings)
		}
	}

	if len(c.canary) > 0 {
		b.WriteString("\n[canary]\n")
		renderSettings(&b, c.canary)
	}
	return b.String()
}

func renderSettings(b *strings.Builder, ss []setting) {
	for _, s := range ss {
		for _, line := range s.comments {
			comment(b, line)
		}
		line := s.key + " = " + s.value
		if s.trailing != "" {
			line += strings.Repeat(" ", max(1, 32-len(line))) + "# " + printable(s.trailing)
		}
		b.WriteString(line + "\n")
	}
}

func renderNotes(b *strings.Builder, ns notes) {
	for _, n := range ns {
		comment(b, n.String())
	}
}

// width is where comments wrap, as the README's examples do.
const width = 80

// comment writes text as TOML comment lines, wrapped at spaces; the lines
// after the first are indented.
func comment(b *strings.Builder, text string) {
	words := strings.Fields(printable(text))
	line := "#"
	for i, w := range words {
		if i > 0 && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = "#  "
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}

// printable is text without control characters, which neither a TOML
// comment nor a one-line error may hold: a quoted nginx argument may have
// a newline.
func printable(text string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, text)
}

// quote is s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// duration is d as a TOML duration string, in the largest unit that keeps
// it whole: "10s", "2m", "500ms", "24h".
func duration(d time.Duration) string {
	switch {
	case d == 0:
		return `"0s"`
	case d%time.Hour == 0:
		return `"` + strconv.FormatInt(int64(d/time.Hour), 10) + `h"`
	case d%time.Minute == 0:
		return `"` + strconv.FormatInt(int64(d/time.Minute), 10) + `m"`
	case d%time.Second == 0:
		return `"` + strconv.FormatInt(int64(d/time.Second), 10) + `s"`
	}
	return `"` + strconv.FormatInt(int64(d/time.Millisecond), 10) + `ms"`
}

// nginxUnits are nginx's time units, in the order a time must use them,
// longest first: "1h30m", not "30m1h".
var nginxUnits = []struct {
	name string
	d    time.Duration
}{
	{"y", 365 * 24 * time.Hour},
	{"M", 30 * 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// unitAt is the index in nginxUnits of the unit s starts with, or -1.
func unitAt(s string) int {
	if strings.HasPrefix(s, "ms") {
		return len(nginxUnits) - 1
	}
	for i, u := range nginxUnits {
		if strings.HasPrefix(s, u.name) {
			return i
		}
	}
	return -1
}

// parseTime reads an nginx time, as ngx_parse_time does: numbers with
// units from years to milliseconds, each unit once and longest first,
// spaces allowed between them; a last number without a unit is seconds.
func parseTime(s string) (time.Duration, bool) {
	const limit = 100 * 365 * 24 * time.Hour
	seconds := unitAt("s")
	var total time.Duration
	last := -1 // the unit used last
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 9 {
			return 0, false
		}
		n, _ := strconv.Atoi(s[i:j])
		u := seconds
		if j < len(s) {
			if u = unitAt(s[j:]); u <= last {
				return 0, false
			}
			j += len(nginxUnits[u].name)
		} else if last >= seconds {
			return 0, false
		}
		last = u
		d := nginxUnits[u].d
		if time.Duration(n) > (limit-total)/d {
			return 0, false
		}
		total += time.Duration(n) * d
		i = j
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	return total, s != ""
}
