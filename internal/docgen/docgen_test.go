package docgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
)

func TestConfigurationReferenceIsCurrent(t *testing.T) {
	Check(t, "docs/configuration.md", ConfigReference())
}

func TestConfigManPageIsCurrentAndRenders(t *testing.T) {
	Check(t, "docs/man/canaryd.toml.5", ConfigPage().Roff(KeysSource))
	Renders(t, filepath.Join(Root(t), "docs/man/canaryd.toml.5"))
}

// load loads text as the only file of a config directory.
func load(t *testing.T, text string) (*config.Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.Load(dir)
}

func TestTheExampleIsAValidConfig(t *testing.T) {
	c, err := load(t, Example())
	if err != nil {
		t.Fatalf("the example does not load: %v\n%s", err, Example())
	}
	if len(c.Upstreams) != 2 || !c.HasCanary() {
		t.Errorf("the example has %d upstreams, canary %v: want a stable and a canary", len(c.Upstreams), c.HasCanary())
	}
}

// Every commented-out line of the example is a key at a value it takes:
// set them all, and the config still loads.
func TestTheExamplesValuesAreValid(t *testing.T) {
	text := example(true)
	if _, err := load(t, text); err != nil {
		t.Fatalf("the example with every key set does not load: %v\n%s", err, text)
	}
}

// A key the reference calls required is: the example without it does not
// load, and the error names it.
func TestRequiredKeysAreRequired(t *testing.T) {
	for _, s := range config.Reference() {
		for _, k := range s.Keys {
			if !k.Required {
				continue
			}
			t.Run(k.String(), func(t *testing.T) {
				text := Example()
				// The first occurrence after the section's header.
				at := strings.Index(text, s.Header()+"\n")
				line := k.Name + " = " + k.Example + "\n"
				i := strings.Index(text[at:], "\n"+line)
				if at < 0 || i < 0 {
					t.Fatalf("the example has no line %q in %s", line, s.Header())
				}
				text = text[:at+i+1] + text[at+i+1+len(line):]
				_, err := load(t, text)
				if err == nil || !strings.Contains(err.Error(), k.Name) {
					t.Errorf("without %s: error %v, want one naming it", k, err)
				}
			})
		}
	}
}

// The docs go into markup as they are: they must not contain its
// characters.
func TestConfigDocsAreText(t *testing.T) {
	for _, s := range config.Reference() {
		if s.Doc == "" || strings.ContainsAny(s.Doc, "`{}\n") {
			t.Errorf("[%s]: doc %q: want one line without ` { }", s.Name, s.Doc)
		}
		for _, k := range s.Keys {
			if strings.ContainsAny(k.Doc, "`{}") {
				t.Errorf("%s: doc %q: want no ` { }", k, k.Doc)
			}
			if k.Example == "" || k.Type == "" {
				t.Errorf("%s: example %q, type %q: want both", k, k.Example, k.Type)
			}
		}
	}
}

func TestRoffEscapes(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain text", `plain text`},
		{"-config-dir and --json", `\-config\-dir and \-\-json`},
		{`a \ backslash`, `a \e backslash`},
		{"`canaryctl status` {id}", `\fBcanaryctl status\fR \fIid\fR`},
		{"`-socket` {path}", `\fB\-socket\fR \fIpath\fR`},
		{"an unclosed ` stays", "an unclosed ` stays"},
		{"`*.toml` files", `\fB*.toml\fR files`},
		{`answers {"message":"NAME"} to {name}`, `answers {"message":"NAME"} to \fIname\fR`},
	} {
		if got := inline(tt.in); got != tt.want {
			t.Errorf("inline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{".starts with a dot", `\&.starts with a dot` + "\n"},
		{"'starts with a quote", `\&'starts with a quote` + "\n"},
		{"a.b", "a.b\n"},
	} {
		if got := textLine(tt.in); got != tt.want {
			t.Errorf("textLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPageRoff(t *testing.T) {
	p := Page{
		Name: "tool", Section: "1", Summary: "does a thing", Manual: "User Commands",
		Synopsis: []string{"`tool` [`-v`]", "`tool` `-h`"},
		Sections: []Section{{"DESCRIPTION", []Block{
			P("First."), P(".Second."), Bullet("one"), Item("`-v`", "verbose"), Sub("More"), Code("it's `x`\n.dot"),
		}}},
	}
	want := `.\" Generated from here: do not edit; run make docs.
.TH TOOL 1 "" "canary-pi" "User Commands"
.nh
.ad l
.SH NAME
tool \- does a thing
.SH SYNOPSIS
\fBtool\fR [\fB\-v\fR]
.br
\fBtool\fR \fB\-h\fR
.SH DESCRIPTION
First.
.PP
\&.Second.
.IP \(bu 2
one
.TP
\fB\-v\fR
verbose
.SS More
.PP
.RS 4
.nf
it\(aqs \(gax\(ga
\&.dot
.fi
.RE
`
	if got := string(p.Roff("here")); got != want {
		t.Errorf("Roff =\n%s\nwant\n%s", got, want)
	}
}
