package systemd

import (
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"

	journald "github.com/coreos/go-systemd/v22/journal"
)

type sent struct {
	msg  string
	prio journald.Priority
	vars map[string]string
}

func capture() (*JournaldHandler, *[]sent) {
	var got []sent
	h := &JournaldHandler{send: func(msg string, p journald.Priority, vars map[string]string) error {
		got = append(got, sent{msg, p, vars})
		return nil
	}}
	return h, &got
}

func TestJournalEntriesCarryStructuredFields(t *testing.T) {
	h, got := capture()
	log := slog.New(h).With("CANARY_VERSION", "v2")
	log.Warn("rolled back", "MESSAGE_ID", "f82c92e61a4b4515aff7a0f4a30df294", "UPSTREAM", "w2", "error rate", 0.4)
	if len(*got) != 1 {
		t.Fatalf("%d entries", len(*got))
	}
	e := (*got)[0]
	if e.msg != "rolled back" || e.prio != journald.PriWarning {
		t.Errorf("entry %q at priority %d", e.msg, e.prio)
	}
	for k, want := range map[string]string{
		"MESSAGE_ID": "f82c92e61a4b4515aff7a0f4a30df294", "UPSTREAM": "w2", "CANARY_VERSION": "v2",
		"ERROR_RATE": "0.4", "SYSLOG_IDENTIFIER": "canaryd",
	} {
		if e.vars[k] != want {
			t.Errorf("%s = %q, want %q", k, e.vars[k], want)
		}
	}
}

func TestJournaldHandlerHonoursLevelAndGroups(t *testing.T) {
	h, got := capture()
	h.Level = slog.LevelWarn
	log := slog.New(h)
	log.Info("quiet")
	log.WithGroup("http").Error("loud", "status", 502)
	if len(*got) != 1 || (*got)[0].vars["HTTP_STATUS"] != "502" || (*got)[0].prio != journald.PriErr {
		t.Fatalf("entries %+v", *got)
	}
}

func TestFieldNamesAreValidForJournald(t *testing.T) {
	for in, want := range map[string]string{
		"upstream": "UPSTREAM", "config-file": "CONFIG_FILE", "_PID": "PID", "9x": "X", "": "FIELD",
	} {
		if got := fieldName(in); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJournaldHandlerKeepsSlogsContract runs testing/slogtest against the
// handler. Its entries are flat journal fields: the results read a field
// back as slog would have nested it (HTTP_STATUS is group HTTP, key
// status), MESSAGE as msg, PRIORITY as level, TIME as time.
func TestJournaldHandlerKeepsSlogsContract(t *testing.T) {
	var got []sent
	slogtest.Run(t, func(t *testing.T) slog.Handler {
		got = nil
		return &JournaldHandler{send: func(msg string, p journald.Priority, vars map[string]string) error {
			got = append(got, sent{msg, p, vars})
			return nil
		}}
	}, func(t *testing.T) map[string]any {
		if len(got) != 1 {
			t.Fatalf("%d entries, want 1", len(got))
		}
		e := got[0]
		m := map[string]any{slog.MessageKey: e.msg, slog.LevelKey: e.prio}
		for k, v := range e.vars {
			switch k {
			case "SYSLOG_IDENTIFIER":
				continue
			case "TIME":
				m[slog.TimeKey] = v
				continue
			}
			parts := strings.Split(k, "_")
			at := m
			for _, g := range parts[:len(parts)-1] {
				sub, ok := at[g].(map[string]any)
				if !ok {
					sub = map[string]any{}
					at[g] = sub
				}
				at = sub
			}
			at[strings.ToLower(parts[len(parts)-1])] = v
		}
		return m
	})
}
