package incident

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

func TestTextSaysWhatWasRolledBackWhyAndWhichWritesToCheck(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, Build(fixture())); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"incident  20261201T101500Z-v2",
		"version   v2, rolled back by the analysis (auto_rollback)",
		"live      from 2026-12-01T10:00:00Z to 2026-12-01T10:15:00Z (15m0s)",
		"verdict   bad: canary 9/20 errors (45.0%)",
		"canary    20 requests, 9 errors (45.0%)",
		"served    7 canary requests, 4 of them POST, PUT, PATCH or DELETE",
		"statuses  0: 1, 200: 4, 201: 1, 502: 1",
		"users     3: alice, bob, carol",
		"non-idempotent requests the canary served, in order (4):",
		"2026-12-01T10:00:02.000Z  req-b       POST    /orders",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "req-b") > strings.Index(text, "req-g") {
		t.Errorf("requests out of order:\n%s", text)
	}
}

func TestTextOfAnIncompleteReportSaysSo(t *testing.T) {
	in := fixture()
	in.Lost = 3
	var b bytes.Buffer
	if err := WriteText(&b, Build(in)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "NOTE      incomplete: the journal overwrote 3 canary requests") {
		t.Errorf("no note:\n%s", b.String())
	}
}

func TestTextOfAnUnknownStartSaysSo(t *testing.T) {
	in := fixture()
	in.Started = time.Time{}
	var b bytes.Buffer
	if err := WriteText(&b, Build(in)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "live      until 2026-12-01T10:15:00Z (since when is not known)\n") {
		t.Errorf("text:\n%s", b.String())
	}
}

func TestTextKeepsAClientsControlCharactersOutOfTheTable(t *testing.T) {
	in := fixture()
	in.Records[1].Path = "/a\nb\tc"
	var b bytes.Buffer
	if err := WriteText(&b, Build(in)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "/a?b?c") {
		t.Errorf("path not made one line:\n%s", b.String())
	}
}

func TestCSVHasAHeaderAndOneRowPerWriteInOrder(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, Build(fixture())); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "time,request_id,method,path,status,bytes_in,bytes_out,duration_ms,upstream,user" {
		t.Errorf("header %s", got)
	}
	want := [][]string{
		{"2026-12-01T10:00:02Z", "req-b", "POST", "/orders", "201", "20", "100", "1.5", "w2", "alice"},
		{"2026-12-01T10:00:04Z", "req-d", "PUT", "/orders/1", "502", "40", "100", "1.5", "w2", "carol"},
		{"2026-12-01T10:00:05Z", "req-e", "DELETE", "/orders/2", "0", "50", "100", "1.5", "w2", ""},
		{"2026-12-01T10:00:07Z", "req-g", "PATCH", "/users/alice", "200", "70", "100", "1.5", "w2", "alice"},
	}
	if len(rows) != len(want)+1 {
		t.Fatalf("%d rows, want %d", len(rows)-1, len(want))
	}
	for i, w := range want {
		if got := strings.Join(rows[i+1], ","); got != strings.Join(w, ",") {
			t.Errorf("row %d: %s, want %s", i+1, got, strings.Join(w, ","))
		}
	}
}
