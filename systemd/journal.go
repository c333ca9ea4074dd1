package systemd

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// NewLogger returns canaryd's logger: native journald entries with
// structured fields when stderr is connected to the journal, text on w
// otherwise.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(&JournalHandler{Level: level, send: journal.Send})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// JournalHandler is a slog.Handler writing to journald. Attribute keys
// become journal fields: canaryd uses upper-case names (UPSTREAM,
// CANARY_VERSION, MESSAGE_ID) so that `journalctl UPSTREAM=w2` filters on
// them; other keys are upper-cased, with anything but A-Z, 0-9 and _
// turned into _.
type JournalHandler struct {
	Level  slog.Leveler
	attrs  []slog.Attr
	prefix string // group names, as FIELD_ prefixes
	send   func(msg string, p journal.Priority, vars map[string]string) error
}

func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.Level != nil {
		min = h.Level.Level()
	}
	return l >= min
}

func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "canaryd"}
	for _, a := range h.attrs {
		addField(vars, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addField(vars, h.prefix, a)
		return true
	})
	return h.send(r.Message, priority(r.Level), vars)
}

func (h *JournalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append(append([]slog.Attr(nil), h.attrs...), prefixed(h.prefix, as)...)
	return &h2
}

func (h *JournalHandler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.prefix = h.prefix + fieldName(name) + "_"
	return &h2
}

func prefixed(prefix string, as []slog.Attr) []slog.Attr {
	if prefix == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: prefix + a.Key, Value: a.Value}
	}
	return out
}

func addField(vars map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			addField(vars, prefix+fieldName(a.Key)+"_", g)
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

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}
