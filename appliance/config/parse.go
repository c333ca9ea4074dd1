package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// file is one config file's settings, grouped by section but not yet typed,
// defaulted or merged with the other files.
type file struct {
	name      string
	sections  map[string]*table // proxy, admin, canary, gpio
	upstreams []*table          // one per [[upstream]], in file order
}

// table holds the keys of one section or one [[upstream]] entry together with
// the lines they were written on, because every later error needs a line.
type table struct {
	name     string // "proxy", "upstream", ...: the prefix of keys in messages
	pos      Pos    // the header, or the first key that mentioned the section
	settings map[string]*setting
	errs     *errorList
}

type setting struct {
	val      value
	pos      Pos
	used     bool // read by the decoder; what is left unread is an unknown key
	rejected bool // of the wrong type or form, and reported
}

// value is a TOML value copied out of the parser, which reuses its nodes for
// each expression.
type value struct {
	kind  unstable.Kind
	text  string  // a string's contents, or a number, boolean or date as written
	items []value // an array's elements
}

// sectionList names the sections for messages: "[proxy], [admin], ... or [gpio]".
var sectionList = func() string {
	var hs []string
	for _, s := range sections {
		hs = append(hs, headerOf(s))
	}
	return strings.Join(hs[:len(hs)-1], ", ") + " or " + hs[len(hs)-1]
}()

// parseFile reads one config file into its settings. Errors in the TOML
// itself are returned; keys in the wrong place are added to errs, which also
// collects the problems found later, so that all of them sort by line.
func parseFile(name string, data []byte, errs *errorList) (*file, error) {
	// Editors on Windows start UTF-8 files with a byte order mark, and a
	// config edited on the SD card from a PC should still load.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))

	// The file is parsed once, by go-toml's parser, which checks the syntax
	// (numbers, strings, dates as written). What its decoder would add is
	// checked here: a key or section defined twice is reported by the walk,
	// a value out of range when the key's type is checked.
	w := walker{f: &file{name: name, sections: map[string]*table{}}, errs: errs, defined: map[string]definition{}}
	w.p.Reset(data)
	top := true
	var cur *table // nil under a header that was already reported as wrong
	for w.fatal == nil && w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, pos := w.key(e.Key())
			cur = w.header(path, pos, e.Kind == unstable.ArrayTable)
			top = false
		case unstable.KeyValue:
			switch {
			case top:
				w.topKeyValue(e)
			case cur != nil:
				w.keyValue(cur, e)
			}
		}
	}
	if w.fatal != nil {
		return nil, w.fatal
	}
	if err := w.p.Error(); err != nil {
		pos := Pos{File: name}
		if pe, ok := errors.AsType[*unstable.ParserError](err); ok && pe.Highlight != nil {
			pos = w.pos(w.p.Range(pe.Highlight))
		}
		return nil, &Error{Pos: pos, Msg: err.Error()}
	}
	return w.f, nil
}

type walker struct {
	p    unstable.Parser
	f    *file
	errs *errorList
	// defined is how and where each section was first given in this file.
	// TOML allows one definition per table and file, except that dotted
	// keys may add to the table they started, and [[headers]] to their
	// array.
	defined map[string]definition
	fatal   *Error // a TOML rule broken: the walk stops there
}

type definition struct {
	how string // "header", "dotted", "inline" or "array"
	pos Pos
}

// define records that pos defines section name, or sets w.fatal when the
// file already did so.
func (w *walker) define(name string, pos Pos, how string) {
	prev, seen := w.defined[name]
	switch {
	case !seen:
		w.defined[name] = definition{how, pos}
	case prev.how != how || how == "header" || how == "inline":
		w.fatal = &Error{Pos: pos, Msg: fmt.Sprintf("%s is already defined in %s (each section once in a file)", headerOf(name), prev.pos)}
	}
}

// header starts the table a [header] or [[header]] opens, or reports why the
// header does not belong in a config file.
func (w *walker) header(path []string, pos Pos, array bool) *table {
	name := path[0]
	known := slices.Contains(sections, name)
	switch {
	case !known:
		w.errs.add(pos, "unknown section [%s] (want %s)", strings.Join(path, "."), sectionList)
	case len(path) > 1:
		w.errs.add(pos, "unknown key %q in %s", strings.Join(path[1:], "."), headerOf(name))
	case name == "upstream" && array:
		w.define(name, pos, "array")
		return w.upstream(pos)
	case name == "upstream":
		w.errs.add(pos, "[upstream] must be [[upstream]]: each upstream is one entry of an array of tables")
	case array:
		w.errs.add(pos, "[[%s]] must be [%s]: there is only one", name, name)
	default:
		w.define(name, pos, "header")
		return w.section(name, pos)
	}
	return nil
}

// topKeyValue places a key-value written before any header, such as
// proxy.listen = "..." or upstream = [{...}, {...}].
func (w *walker) topKeyValue(kv *unstable.Node) {
	path, pos := w.key(kv.Key())
	name, v := path[0], kv.Value()
	switch {
	case !slices.Contains(sections, name):
		if len(path) == 1 && v.Kind != unstable.InlineTable {
			w.errs.add(pos, "unknown key %q outside any section (want it in %s)", name, sectionList)
		} else {
			w.errs.add(pos, "unknown section [%s] (want %s)", name, sectionList)
		}
	case name == "upstream":
		if len(path) > 1 || !isArrayOfTables(v) {
			w.errs.add(pos, "upstream must be an array of tables: write [[upstream]] before each entry")
			return
		}
		w.define(name, pos, "inline")
		for it := v.Children(); it.Next(); {
			t := w.upstream(w.pos(it.Node().Raw))
			w.inlineTable(t, it.Node())
		}
	case len(path) > 1:
		w.define(name, pos, "dotted")
		w.set(w.section(name, pos), path[1:], v, pos)
	case v.Kind == unstable.InlineTable:
		w.define(name, pos, "inline")
		w.inlineTable(w.section(name, pos), v)
	default:
		w.errs.add(pos, "%s must be a table: write [%s] above its keys", name, name)
	}
}

func (w *walker) inlineTable(t *table, n *unstable.Node) {
	for it := n.Children(); it.Next(); {
		if it.Node().Kind == unstable.KeyValue {
			w.keyValue(t, it.Node())
		}
	}
}

func (w *walker) keyValue(t *table, kv *unstable.Node) {
	path, pos := w.key(kv.Key())
	w.set(t, path, kv.Value(), pos)
}

// set records a key. A dotted key below a section is kept joined: no section
// has subtables, so it is reported as unknown along with any other stray key.
func (w *walker) set(t *table, path []string, v *unstable.Node, pos Pos) {
	key := strings.Join(path, ".")
	if prev, dup := t.settings[key]; dup {
		w.fatal = &Error{Pos: pos, Msg: fmt.Sprintf("%s.%s is already set in %s", t.name, key, prev.pos)}
		return
	}
	t.settings[key] = &setting{val: copyValue(v), pos: pos}
}

// section returns the file's table for a section, which several headers and
// dotted keys may add to.
func (w *walker) section(name string, pos Pos) *table {
	t, ok := w.f.sections[name]
	if !ok {
		t = newTable(name, pos, w.errs)
		w.f.sections[name] = t
	}
	return t
}

func (w *walker) upstream(pos Pos) *table {
	t := newTable("upstream", pos, w.errs)
	w.f.upstreams = append(w.f.upstreams, t)
	return t
}

func newTable(name string, pos Pos, errs *errorList) *table {
	return &table{name: name, pos: pos, settings: map[string]*setting{}, errs: errs}
}

// key returns a (possibly dotted) key's parts and where it was written.
func (w *walker) key(it unstable.Iterator) ([]string, Pos) {
	var path []string
	var pos Pos
	for it.Next() {
		if path == nil {
			pos = w.pos(it.Node().Raw)
		}
		path = append(path, string(it.Node().Data))
	}
	return path, pos
}

func (w *walker) pos(r unstable.Range) Pos {
	return Pos{File: w.f.name, Line: w.p.Shape(r).Start.Line}
}

func copyValue(n *unstable.Node) value {
	v := value{kind: n.Kind}
	switch n.Kind {
	case unstable.Array:
		for it := n.Children(); it.Next(); {
			v.items = append(v.items, copyValue(it.Node()))
		}
	case unstable.InlineTable:
		// Only ever reported as a wrong type: no key takes a table.
	default:
		v.text = string(n.Data)
	}
	return v
}

func isArrayOfTables(n *unstable.Node) bool {
	if n.Kind != unstable.Array {
		return false
	}
	for it := n.Children(); it.Next(); {
		if it.Node().Kind != unstable.InlineTable {
			return false
		}
	}
	return true
}

func headerOf(section string) string {
	if section == "upstream" {
		return "[[upstream]]"
	}
	return "[" + section + "]"
}
