package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Section documents one table of a config file and its keys, for the
// reference: docs/configuration.md and canaryd.toml(5) are made from
// Reference (see internal/docgen).
type Section struct {
	Name  string // as written in a file's header: [proxy]
	Array bool   // an array of tables, one per entry: [[upstream]]
	Doc   string
	Keys  []Key
}

// Header is the section's header as a file writes it: "[proxy]",
// "[[upstream]]".
func (s Section) Header() string {
	if s.Array {
		return "[[" + s.Name + "]]"
	}
	return "[" + s.Name + "]"
}

// Key documents one config key.
type Key struct {
	Section string // the section's name
	Name    string // as written in a file
	Type    string // the TOML value it takes, in words: "string", "duration", "array of strings"
	// Default is the value when no file sets the key, as TOML; "" when it
	// has none (a required key, or one whose absence means off).
	Default string
	// Example is a value to show, as TOML: the default unless the
	// declaration gives a more telling one.
	Example  string
	Doc      string // one line
	Live     bool   // a reload applies a change; false: only a restart does
	Required bool   // a config without it does not validate (canary.version: with a canary upstream)
}

// String is the key's full name, "section.name".
func (k Key) String() string { return k.Section + "." + k.Name }

// Reference returns every key a config file may set, by section, in the
// order of their declaration.
func Reference() []Section {
	c := &Config{Upstreams: make([]Upstream, 1)}
	var ref []Section
	for _, name := range sections {
		s := Section{Name: name, Array: name == "upstream", Doc: sectionDocs[name]}
		for _, k := range keysOf(name) {
			field := k.field(c, 0)
			key := Key{
				Section:  k.Section,
				Name:     k.Name,
				Type:     tomlType(field),
				Example:  k.Example,
				Doc:      k.Doc,
				Live:     k.Live,
				Required: strings.HasPrefix(k.Doc, "required"),
			}
			if k.Default != nil {
				key.Default = tomlValue(k.Default)
			}
			if key.Example == "" {
				key.Example = key.Default
			}
			s.Keys = append(s.Keys, key)
		}
		ref = append(ref, s)
	}
	return ref
}

// tomlType names the value a field takes in a file, as decoding says what it
// wants (see (*table).set).
func tomlType(field any) string {
	switch field.(type) {
	case *string:
		return "string"
	case *bool:
		return "boolean"
	case *int:
		return "integer"
	case *float64:
		return "number"
	case *[]float64:
		return "array of numbers"
	case *[]string, *[]netip.Prefix:
		return "array of strings"
	case *time.Duration, *durationOrOff:
		return "duration"
	case **url.URL:
		return "string (URL)"
	}
	panic(fmt.Sprintf("config: no TOML type for a %T", field))
}

// tomlValue writes a default as a file would.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case time.Duration:
		return strconv.Quote(shortDuration(v))
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		items := make([]string, rv.Len())
		for i := range items {
			items[i] = tomlValue(rv.Index(i).Interface())
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// shortDuration writes d in its largest whole unit, as people write it in a
// file: "5m", "75s", "1ms" rather than time's "5m0s".
func shortDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return d.String()
}
