package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEveryKeyIsDeclaredWell(t *testing.T) {
	seen := map[string]bool{}
	c := &Config{Upstreams: make([]Upstream, 1)}
	for _, k := range keys {
		if seen[k.String()] {
			t.Errorf("%s is declared twice", k)
		}
		seen[k.String()] = true
		if k.Doc == "" || strings.Contains(k.Doc, "\n") {
			t.Errorf("%s: doc %q, want one line", k, k.Doc)
		}
		field := reflect.TypeOf(k.field(c, 0)).Elem()
		if k.Default != nil && reflect.TypeOf(k.Default) != field {
			t.Errorf("%s: default %v is a %T, want a %v like its field", k, k.Default, k.Default, field)
		}
	}
	for i, s := range sections {
		if slices.Contains(sections[i+1:], s) {
			t.Errorf("the keys of [%s] are not declared together", s)
		}
	}
}

// The reference is made from the keys (internal/docgen, make docs); this
// checks what users read, whatever made it.
func TestTheReferenceShowsEveryKey(t *testing.T) {
	for _, path := range []string{"../../docs/configuration.md", "../../docs/man/canaryd.toml.5"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: make docs writes it", err)
		}
		for _, k := range keys {
			// The Markdown names a key section.name, the manual page
			// its name in bold under the section's heading.
			want := "`" + k.String() + "`"
			if strings.HasSuffix(path, ".5") {
				want = `\fB` + strings.ReplaceAll(k.Name, "-", `\-`) + `\fR`
			}
			if !strings.Contains(string(data), want) {
				t.Errorf("%s does not show %s (%s): make docs", path, k, k.Doc)
			}
		}
	}
}

func TestReferenceSectionsHaveDocs(t *testing.T) {
	for _, s := range Reference() {
		if s.Doc == "" || len(s.Keys) == 0 {
			t.Errorf("[%s]: doc %q, %d keys: want a doc (sectionDocs) and keys", s.Name, s.Doc, len(s.Keys))
		}
	}
	if len(sectionDocs) != len(sections) {
		t.Errorf("sectionDocs has %d sections, the keys %d", len(sectionDocs), len(sections))
	}
}

func TestDefaultsAreWrittenAsAFileWould(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want string
	}{
		{"GPIO22", `"GPIO22"`},
		{5 * time.Second, `"5s"`},
		{60 * time.Second, `"1m"`},
		{75 * time.Second, `"75s"`},
		{time.Millisecond, `"1ms"`},
		{1500 * time.Millisecond, `"1500ms"`},
		{0.01, "0.01"},
		{1024, "1024"},
		{false, "false"},
		{[]float64{1, 5, 25.5}, "[1, 5, 25.5]"},
		{[]string{"a", "b"}, `["a", "b"]`},
	} {
		if got := tomlValue(tt.v); got != tt.want {
			t.Errorf("tomlValue(%#v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestRestartNeededListsChangedKeysThatAReloadDoesNotApply(t *testing.T) {
	base := minimal + upstream("c1", "canary") + "[canary]\nversion = \"v1\"\n"
	load := func(text string) *Config {
		t.Helper()
		c, err := Load(writeDir(t, map[string]string{"canaryd.toml": text}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := load(base)
	for _, tt := range []struct {
		name string
		text string
		want []string
	}{
		{"nothing changed", base, nil},
		{"only live keys changed", strings.NewReplacer(
			`"v1"`, `"v2"`,
			`role = "stable"`, "role = \"stable\"\nweight = 7\nfail_timeout = \"3s\"",
		).Replace(base) + "error_rate = 0.5\n[[upstream]]\nname = \"new\"\nurl = \"http://10.0.0.9:1\"\nrole = \"stable\"\n", nil},
		{"listener, a timeout, admin and a pin", strings.Replace(base, `listen = ":8080"`, "listen = \":9090\"\nheader_timeout = \"5s\"", 1) +
			"[admin]\nsocket = \"/tmp/a.sock\"\n[gpio]\nbutton = \"GPIO4\"\n",
			[]string{"proxy.listen", "proxy.header_timeout", "admin.socket", "gpio.button"}},
		{"access_log applies live", strings.Replace(base, `listen = ":8080"`, "listen = \":8080\"\naccess_log = true", 1), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := RestartNeeded(old, load(tt.text)); !slices.Equal(got, tt.want) {
				t.Errorf("RestartNeeded = %q, want %q", got, tt.want)
			}
		})
	}
}

// A key that needs a restart may one day be an upstream's; it is compared
// with the old entry of the same name.
func TestRestartNeededComparesUpstreamsByName(t *testing.T) {
	defer func(saved []keyDecl) { keys = saved }(keys)
	keys = slices.Clone(keys)
	for i, k := range keys {
		if k.String() == "upstream.weight" {
			keys[i].Live = false
		}
	}
	old := &Config{Upstreams: []Upstream{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}}}
	for _, tt := range []struct {
		name string
		next []Upstream
		want []string
	}{
		{"same weights, other order", []Upstream{{Name: "b", Weight: 2}, {Name: "a", Weight: 1}}, nil},
		{"an entry added and one removed", []Upstream{{Name: "a", Weight: 1}, {Name: "c", Weight: 9}}, nil},
		{"a weight changed", []Upstream{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}}, []string{"upstream.weight"}},
	} {
		if got := RestartNeeded(old, &Config{Upstreams: tt.next}); !slices.Equal(got, tt.want) {
			t.Errorf("%s: RestartNeeded = %q, want %q", tt.name, got, tt.want)
		}
	}
}
