package web_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/state"
	gpioled "github.com/canary-pi/canary-pi/gpio/led"
)

// TestPageSpellsValuesAsTheTypes: the status page reads the status JSON,
// so the values its script looks up and compares are exactly the values of
// the Go types the JSON carries: modes, verdicts and LED patterns (a
// cause comes in words, in the JSON's by).
// A value renamed or added in Go without the page fails here.
func TestPageSpellsValuesAsTheTypes(t *testing.T) {
	_, page := getPage(t)

	modes := texts(state.Modes())
	var verdicts []string
	for _, v := range analysis.States() {
		verdicts = append(verdicts, v.String())
	}
	patterns := texts(gpioled.Patterns())

	for _, tc := range []struct {
		table string
		want  []string
	}{
		{"const STATE =", modes},
		{"const VERDICT =", verdicts},
		{"const MARK =", texts(history.Kinds())},
		{"const STATE_CHIP =", modes},
	} {
		if got := objectKeys(t, page, tc.table); !sameSet(got, tc.want) {
			t.Errorf("%s has keys %v, want %v", tc.table, got, tc.want)
		}
	}

	// Each light's switch names the patterns that light can show; between
	// them, every pattern.
	status := caseLabels(t, page, "function statusLED(")
	canary := caseLabels(t, page, "function canaryLED(")
	if got := union(status, canary); !sameSet(got, patterns) {
		t.Errorf("statusLED and canaryLED handle %v, want %v", got, patterns)
	}
	favicon := page[max(strings.Index(page, "function favicon("), 0):]
	for _, p := range objectKeys(t, favicon, "const c =") {
		if !slices.Contains(patterns, p) {
			t.Errorf("favicon colours pattern %q, which is not a led.Pattern (%v)", p, patterns)
		}
	}

	// Comparisons of a state or a verdict with a literal: a verdict's state
	// and a fleet member's verdict are verdicts, any other state a mode.
	compared := regexp.MustCompile(`([\w.]*\b(?:state|verdict)) [!=]== '([^']*)'`).FindAllStringSubmatch(page, -1)
	if len(compared) == 0 {
		t.Fatal("no comparison of a state in the page: has the script changed shape?")
	}
	for _, m := range compared {
		want := modes
		if strings.HasSuffix(m[1], "verdict.state") || strings.HasSuffix(m[1], "verdict") {
			want = verdicts
		}
		if !slices.Contains(want, m[2]) {
			t.Errorf("the page compares %s with %q, which is none of %v", m[1], m[2], want)
		}
	}
}

func texts[T ~string](values []T) []string {
	var out []string
	for _, v := range values {
		out = append(out, string(v))
	}
	return out
}

// objectKeys returns the keys of the first object literal after marker in
// the page's script: identifiers or quoted strings before a colon, at the
// literal's top level.
func objectKeys(t *testing.T, page, marker string) []string {
	t.Helper()
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("the page has no %q", marker)
	}
	j := strings.IndexByte(page[i:], '{')
	if j < 0 {
		t.Fatalf("no object literal after %q", marker)
	}
	src := page[i+j:]
	var keys []string
	depth, expectKey := 0, false
	for k := 0; k < len(src); k++ {
		switch c := src[k]; {
		case c == '\'' || c == '"':
			end := k + 1
			for end < len(src) && src[end] != c {
				if src[end] == '\\' {
					end++
				}
				end++
			}
			if depth == 1 && expectKey {
				keys = append(keys, src[k+1:end])
				expectKey = false
			}
			k = end
		case c == '{' || c == '[' || c == '(':
			depth++
			expectKey = depth == 1
		case c == '}' || c == ']' || c == ')':
			depth--
			if depth == 0 {
				return keys
			}
		case c == ',' && depth == 1:
			expectKey = true
		case depth == 1 && expectKey && (c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
			end := k
			for end < len(src) && (src[end] == '_' || src[end] >= 'a' && src[end] <= 'z' || src[end] >= 'A' && src[end] <= 'Z' || src[end] >= '0' && src[end] <= '9') {
				end++
			}
			keys = append(keys, src[k:end])
			expectKey = false
			k = end - 1
		}
	}
	t.Fatalf("the object literal after %q is not closed", marker)
	return nil
}

// caseLabels returns the string case labels of the function that starts
// at marker.
func caseLabels(t *testing.T, page, marker string) []string {
	t.Helper()
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("the page has no %q", marker)
	}
	body := page[i:]
	if end := strings.Index(body, "\n  }\n"); end >= 0 {
		body = body[:end]
	}
	var labels []string
	for _, m := range regexp.MustCompile(`case '([^']*)':`).FindAllStringSubmatch(body, -1) {
		labels = append(labels, m[1])
	}
	if len(labels) == 0 {
		t.Fatalf("%q has no case labels", marker)
	}
	return labels
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(slices.Compact(a), slices.Compact(b)) && len(a) == len(b)
}
