package systemd

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	journald "github.com/coreos/go-systemd/v22/journal"
)

// NewLogger returns canaryd's logger: native journald entries with
// structured fields when stderr is connected to the journal, text on w
// otherwise.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if ok, _ := journald.StderrIsJournalStream(); ok && journald.Enabled() {
		return slog.New(&JournaldHandler{Level: level, send: journald.Send})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// JournaldHandler is a slog.Handler writing to journald, systemd's journal
// (not to be confused with the canary journal, appliance/journal, of what
// the canary served). Attribute keys become journal fields: canaryd uses
// upper-case names (UPSTREAM, CANARY_VERSION, MESSAGE_ID) so that
// `journalctl UPSTREAM=w2` filters on them; other keys are upper-cased,
// with anything but A-Z, 0-9 and _ turned into _. A group's attributes
// are prefixed with its name (HTTP_STATUS); the record's time, which
// journald stamps anyway, is kept as TIME. It follows slog's Handler
// contract, as testing/slogtest checks it.
type JournaldHandler struct {
	Level  slog.Leveler
	attrs  []groupedAttr // from WithAttrs
	prefix string        // the open groups' names, as FIELD_ prefixes
	send   func(msg string, p journald.Priority, vars map[string]string) error
}

// groupedAttr is an attribute WithAttrs gave, with the groups open then.
type groupedAttr struct {
	prefix string
	attr   slog.Attr
}

func (h *JournaldHandler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.Level != nil {
		min = h.Level.Level()
	}
	return l >= min
}

func (h *JournaldHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "canaryd"}
	if !r.Time.IsZero() {
		vars["TIME"] = r.Time.Format(time.RFC3339Nano)
	}
	for _, a := range h.attrs {
		addField(vars, a.prefix, a.attr)
	}
	r.Attrs(func(a slog.Attr) bool {
		addField(vars, h.prefix, a)
		return true
	})
	return h.send(r.Message, priority(r.Level), vars)
}

func (h *JournaldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		h2.attrs = append(h2.attrs, groupedAttr{h.prefix, a})
	}
	return &h2
}

func (h *JournaldHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h // slog: an empty group name is no group
	}
	h2 := *h
	h2.prefix = h.prefix + fieldName(name) + "_"
	return &h2
}

// addField adds a to vars under prefix. As slog's Handler contract asks,
// an attribute with an empty key and a zero value is left out, and a group
// with an empty key is inlined; an empty group adds nothing.
func addField(vars map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += fieldName(a.Key) + "_"
		}
		for _, g := range v.Group() {
			addField(vars, prefix, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	var s string
	switch v.Kind() {
	case slog.KindTime:
		s = v.Time().Format(time.RFC3339Nano)
	default:
		s = v.String()
	}
	vars[fieldName(prefix+a.Key)] = s
}

// fieldName makes a valid journal field name: upper case letters, digits
// and underscores, not starting with an underscore (those are trusted
// fields journald sets itself) or a digit.
func fieldName(key string) string {
	b := []byte(strings.ToUpper(key))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), "_0123456789")
	if s == "" {
		return "FIELD"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func priority(l slog.Level) journald.Priority {
	switch {
	case l >= slog.LevelError:
		return journald.PriErr
	case l >= slog.LevelWarn:
		return journald.PriWarning
	case l >= slog.LevelInfo:
		return journald.PriInfo
	}
	return journald.PriDebug
}
