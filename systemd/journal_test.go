package systemd

import (
	"log/slog"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type sent struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

func capture() (*JournalHandler, *[]sent) {
	var got []sent
	h := &JournalHandler{send: func(msg string, p journal.Priority, vars map[string]string) error {
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
	if e.msg != "rolled back" || e.prio != journal.PriWarning {
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

func TestJournalHandlerHonoursLevelAndGroups(t *testing.T) {
	h, got := capture()
	h.Level = slog.LevelWarn
	log := slog.New(h)
	log.Info("quiet")
	log.WithGroup("http").Error("loud", "status", 502)
	if len(*got) != 1 || (*got)[0].vars["HTTP_STATUS"] != "502" || (*got)[0].prio != journal.PriErr {
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
