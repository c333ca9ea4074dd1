package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// maxUpstreams bounds the routing table, and with it the work of one pick.
const maxUpstreams = 256

// merged is the whole directory's settings: sections joined key by key,
// upstreams listed in reading order.
type merged struct {
	sections  map[string]*table
	upstreams []*table
	first     string // the first file: where a key missing everywhere is reported
	errs      *errorList
}

// merge joins the files' sections. A key may be set in one file only: two
// values would leave the winner to the file names' sort order, which nobody
// reads as configuration.
func merge(files []*file, errs *errorList) *merged {
	m := &merged{sections: map[string]*table{}, first: files[0].name, errs: errs}
	for _, f := range files {
		for name, s := range f.sections {
			t, ok := m.sections[name]
			if !ok {
				t = newTable(name, s.pos, errs)
				m.sections[name] = t
			}
			for key, st := range s.settings {
				if prev, dup := t.settings[key]; dup {
					errs.add(st.pos, "%s.%s is already set in %s", name, key, prev.pos)
					continue
				}
				t.settings[key] = st
			}
		}
		m.upstreams = append(m.upstreams, f.upstreams...)
	}
	return m
}

// section returns a section's settings, empty when no file has it.
func (m *merged) section(name string) *table {
	t, ok := m.sections[name]
	if !ok {
		t = newTable(name, Pos{File: m.first}, m.errs)
		m.sections[name] = t
	}
	return t
}

// decode types, defaults and validates the merged settings. Problems go to
// errs; the Config is only meaningful when there are none.
func decode(m *merged, dir string, errs *errorList) *Config {
	c := &Config{Upstreams: make([]Upstream, len(m.upstreams))}
	for _, k := range keys {
		if k.Section != "upstream" {
			m.section(k.Section).decode(k, k.field(c, 0))
			continue
		}
		for i, t := range m.upstreams {
			t.decode(k, k.field(c, i))
		}
	}

	checkProxy(&c.Proxy, m.section("proxy"))
	checkAdmin(&c.Admin, m.section("admin"), dir)
	checkUpstreams(c.Upstreams, m.upstreams, m.first, errs)
	checkGPIO(c, m.section("gpio"))
	checkCanary(&c.Canary, m.section("canary"), c.Upstreams)
	checkJournal(&c.Journal, m.section("journal"))
	checkIncidents(&c.Incidents, m.section("incidents"))
	checkFleet(&c.Fleet, m.section("fleet"), dir)
	checkLoops(c, m.upstreams)

	// Decoding read every key it knows, so whatever is left is a typo.
	for _, t := range m.sections {
		t.reportUnknown()
	}
	for _, t := range m.upstreams {
		t.reportUnknown()
	}
	return c
}

// lookup returns key's setting, marking the key as known, or nil when no
// file sets it.
func (t *table) lookup(key string) *setting {
	s := t.settings[key]
	if s != nil {
		s.used = true
	}
	return s
}

// at is where to report a problem with key: its line, or the table's when
// the key is missing.
func (t *table) at(key string) Pos {
	if s := t.settings[key]; s != nil {
		return s.pos
	}
	return t.pos
}

// rejected reports whether key's value was wrong and has been reported.
func (t *table) rejected(key string) bool {
	s := t.settings[key]
	return s != nil && s.rejected
}

// text is key's value when it is a string, else "".
func (t *table) text(key string) string {
	if s := t.settings[key]; s != nil && s.val.kind == unstable.String {
		return s.val.text
	}
	return ""
}

func (t *table) wrongType(key string, s *setting, want string) {
	t.errs.add(s.pos, "%s.%s: want %s, got %s", t.name, key, want, describe(s.val))
}

func (t *table) reportUnknown() {
	for key, s := range t.settings {
		if !s.used {
			t.errs.add(s.pos, "unknown key %q in %s", key, headerOf(t.name))
		}
	}
}

// decode sets the field dst points to from the key's setting in t, or to
// the key's default when no file sets it or its value is wrong (and
// reported).
func (t *table) decode(k keyDecl, dst any) {
	if s := t.lookup(k.Name); s != nil {
		if t.set(k.Name, s, dst) {
			return
		}
		s.rejected = true
	}
	if k.Default != nil {
		reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(k.Default))
	}
}

// set types a setting by the field it goes to, reporting a value that does
// not fit.
func (t *table) set(key string, s *setting, dst any) bool {
	switch dst := dst.(type) {
	case *string:
		if s.val.kind != unstable.String {
			t.wrongType(key, s, "a string")
			return false
		}
		*dst = s.val.text
	case *bool:
		if s.val.kind != unstable.Bool {
			t.wrongType(key, s, "true or false")
			return false
		}
		*dst = s.val.text == "true"
	case *int:
		if s.val.kind != unstable.Integer {
			t.wrongType(key, s, "an integer")
			return false
		}
		// The size of int, not int64: on the 32-bit Pis a larger value
		// would wrap around instead of failing.
		n, err := strconv.ParseInt(s.val.text, 0, strconv.IntSize)
		if err != nil {
			t.errs.add(s.pos, "%s.%s: %s is out of range", t.name, key, s.val.text)
			return false
		}
		*dst = int(n)
	case *float64:
		f, ok := number(s.val)
		if !ok {
			t.wrongType(key, s, "a number")
			return false
		}
		*dst = f
	case *[]float64:
		return t.setNumbers(key, s, dst)
	case *[]string:
		return t.setStrings(key, s, dst)
	case *[]netip.Prefix:
		return t.setPrefixes(key, s, dst)
	case *time.Duration:
		return t.setDuration(key, s, dst, false)
	case *durationOrOff:
		return t.setDuration(key, s, (*time.Duration)(dst), true)
	case **url.URL:
		return t.setURL(key, s, dst)
	default:
		panic(fmt.Sprintf("config: %s.%s is a %T, which has no decoder", t.name, key, dst))
	}
	return true
}

func (t *table) setNumbers(key string, s *setting, dst *[]float64) bool {
	if s.val.kind != unstable.Array {
		t.wrongType(key, s, "an array of numbers")
		return false
	}
	fs := make([]float64, 0, len(s.val.items))
	for _, item := range s.val.items {
		f, ok := number(item)
		if !ok {
			t.errs.add(s.pos, "%s.%s: want an array of numbers, got %s in it", t.name, key, describe(item))
			return false
		}
		fs = append(fs, f)
	}
	*dst = fs
	return true
}

func (t *table) setStrings(key string, s *setting, dst *[]string) bool {
	if s.val.kind != unstable.Array {
		t.wrongType(key, s, "an array of strings")
		return false
	}
	ss := make([]string, 0, len(s.val.items))
	for _, item := range s.val.items {
		if item.kind != unstable.String {
			t.errs.add(s.pos, "%s.%s: want an array of strings, got %s in it", t.name, key, describe(item))
			return false
		}
		ss = append(ss, item.text)
	}
	*dst = ss
	return true
}

// setPrefixes reads an array of addresses and CIDR prefixes; an address
// is the prefix of itself alone.
func (t *table) setPrefixes(key string, s *setting, dst *[]netip.Prefix) bool {
	if s.val.kind != unstable.Array {
		t.wrongType(key, s, `an array of addresses or prefixes such as ["192.168.1.0/24"]`)
		return false
	}
	var ss []string
	if !t.setStrings(key, s, &ss) {
		return false
	}
	ps := make([]netip.Prefix, 0, len(ss))
	for _, text := range ss {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			a, aerr := netip.ParseAddr(text)
			if aerr != nil {
				t.errs.add(s.pos, `%s.%s: %q is not an address or a CIDR prefix (e.g. "192.168.1.0/24" or "10.0.0.7")`, t.name, key, text)
				return false
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		ps = append(ps, p.Masked())
	}
	*dst = ps
	return true
}

// durationOrOff is the type a key's field is decoded as when its duration
// may be zero, meaning off.
type durationOrOff time.Duration

// setDuration reads a duration written as a Go duration string. A duration
// of zero or less is never what a timeout or a window means, so it is
// refused, but for a key whose zero means off.
func (t *table) setDuration(key string, s *setting, dst *time.Duration, zeroIsOff bool) bool {
	if s.val.kind != unstable.String {
		t.wrongType(key, s, `a duration string such as "30s"`)
		return false
	}
	d, err := time.ParseDuration(s.val.text)
	if err != nil {
		t.errs.add(s.pos, `%s.%s: %q is not a duration (want e.g. "500ms", "30s" or "5m")`, t.name, key, s.val.text)
		return false
	}
	switch {
	case d < 0 && zeroIsOff:
		t.errs.add(s.pos, `%s.%s: %q is negative (want "0s" for off, or a duration such as "30s")`, t.name, key, s.val.text)
		return false
	case d <= 0 && !zeroIsOff:
		t.errs.add(s.pos, "%s.%s: %q is not more than zero", t.name, key, s.val.text)
		return false
	}
	*dst = d
	return true
}

// setURL reads an upstream's address. An empty string is left to
// checkUpstream, which reports the url as missing.
func (t *table) setURL(key string, s *setting, dst **url.URL) bool {
	if s.val.kind != unstable.String {
		t.wrongType(key, s, "a string")
		return false
	}
	if s.val.text == "" {
		return true
	}
	u, err := parseUpstreamURL(s.val.text)
	if err != nil {
		t.errs.add(s.pos, "%s: %s %q: %v", upstreamName(t.text("name")), key, s.val.text, err)
		return false
	}
	*dst = u
	return true
}

// number reads an integer or a float: TOML types them apart, but a
// percentage written as 5 means 5.0.
func number(v value) (float64, bool) {
	switch v.kind {
	case unstable.Integer:
		n, err := strconv.ParseInt(v.text, 0, 64)
		return float64(n), err == nil
	case unstable.Float:
		if strings.TrimLeft(v.text, "+-") == "nan" {
			return math.NaN(), true
		}
		// A float too large for float64 reads as infinite, which every
		// range check refuses with the key's own message.
		f, err := strconv.ParseFloat(strings.ReplaceAll(v.text, "_", ""), 64)
		return f, err == nil || errors.Is(err, strconv.ErrRange)
	}
	return 0, false
}

// describe names a value's TOML type and shows it, for "got ..." messages.
func describe(v value) string {
	switch v.kind {
	case unstable.String:
		return "string " + strconv.Quote(v.text)
	case unstable.Integer:
		return "integer " + v.text
	case unstable.Float:
		return "float " + v.text
	case unstable.Bool:
		return "boolean " + v.text
	case unstable.Array:
		return "array"
	case unstable.InlineTable:
		return "table"
	case unstable.LocalDate:
		return "date " + v.text
	case unstable.LocalTime:
		return "time " + v.text
	default:
		return "date-time " + v.text
	}
}
