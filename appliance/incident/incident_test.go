package incident

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
)

var (
	started    = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rolledBack = time.Date(2026, 12, 1, 10, 15, 0, 0, time.UTC)
)

// fixture is what a canary served: reads and writes, three users and an
// anonymous client, one request that met no answer.
func fixture() Input {
	at := func(s int) time.Time { return started.Add(time.Duration(s) * time.Second) }
	rec := func(seq uint64, s int, method, path string, status int, user string) journal.Record {
		return journal.Record{Seq: seq, Time: at(s), RequestID: "req-" + string(rune('a'+seq-1)), Method: method,
			Path: path, Status: status, BytesIn: 10 * int64(seq), BytesOut: 100, DurationMs: 1.5,
			Upstream: "w2", Version: "v2", User: user}
	}
	records := []journal.Record{
		rec(1, 1, "GET", "/ping", 200, "bob"),
		rec(2, 2, "POST", "/orders", 201, "alice"),
		rec(3, 3, "GET", "/orders/1", 200, "alice"),
		rec(4, 4, "PUT", "/orders/1", 502, "carol"),
		rec(5, 5, "DELETE", "/orders/2", 0, ""),
		rec(6, 6, "HEAD", "/", 200, "bob"),
		rec(7, 7, "PATCH", "/users/alice", 200, "alice"),
	}
	records[1].Body = `{"item":1}`
	var canary, stable analysis.Counts
	canary.Requests, canary.Errors = 20, 9
	stable.Requests, stable.Errors = 40, 0
	return Input{
		Version: "v2", Cause: state.CauseAuto, Reason: "the verdict turned bad",
		Started: started, RolledBack: rolledBack,
		Verdict: analysis.Verdict{State: analysis.Bad, Reason: "canary 9/20 errors (45.0%) ≥ 5.0%"},
		Canary:  canary, Stable: stable, Records: records,
	}
}

func TestBuildCountsWhatTheCanaryServedAndListsItsWritesInOrder(t *testing.T) {
	r := Build(fixture())
	if r.ID != "20261201T101500Z-v2" || r.Version != "v2" || r.Cause != state.CauseAuto {
		t.Errorf("id %q version %q cause %q; want 20261201T101500Z-v2, v2, auto", r.ID, r.Version, r.Cause)
	}
	if !r.Started.Equal(started) || !r.RolledBack.Equal(rolledBack) {
		t.Errorf("started %v rolled back %v", r.Started, r.RolledBack)
	}
	if r.Served != 7 {
		t.Errorf("served %d, want 7", r.Served)
	}
	if want := map[string]uint64{"200": 4, "201": 1, "502": 1, "0": 1}; !maps.Equal(r.ByStatus, want) {
		t.Errorf("by status %v, want %v", r.ByStatus, want)
	}
	if want := map[string]uint64{"GET": 2, "POST": 1, "PUT": 1, "DELETE": 1, "HEAD": 1, "PATCH": 1}; !maps.Equal(r.ByMethod, want) {
		t.Errorf("by method %v, want %v", r.ByMethod, want)
	}
	if r.Users.Count != 3 || !slices.Equal(r.Users.IDs, []string{"alice", "bob", "carol"}) {
		t.Errorf("users %+v, want 3: alice, bob, carol", r.Users)
	}
	var got []string
	for _, q := range r.Requests {
		got = append(got, q.RequestID+" "+q.Method+" "+q.Path)
	}
	want := []string{"req-b POST /orders", "req-d PUT /orders/1", "req-e DELETE /orders/2", "req-g PATCH /users/alice"}
	if !slices.Equal(got, want) {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if q := r.Requests[0]; q.Body != `{"item":1}` || q.Status != 201 || q.BytesIn != 20 || q.User != "alice" || !q.Time.Equal(started.Add(2*time.Second)) {
		t.Errorf("first request %+v", q)
	}
	if r.Canary.Requests != 20 || r.Canary.Errors != 9 || r.Canary.ErrorRate != 0.45 || r.Stable.Requests != 40 {
		t.Errorf("window numbers canary %+v stable %+v", r.Canary, r.Stable)
	}
	if r.Lost != 0 || r.Note != "" {
		t.Errorf("a complete journal gives lost %d, note %q", r.Lost, r.Note)
	}
}

func TestBuildKeepsTheQueryStringOutOfPaths(t *testing.T) {
	in := fixture()
	in.Records = []journal.Record{{Method: "POST", Path: "/login?token=secret", RequestID: "x"}}
	if got := Build(in).Requests[0].Path; got != "/login" {
		t.Errorf("path %q, want /login", got)
	}
}

func TestBuildSaysTheReportIsIncompleteWhenTheJournalLostRecords(t *testing.T) {
	in := fixture()
	in.Lost = 1234
	r := Build(in)
	if r.Lost != 1234 || !strings.Contains(r.Note, "incomplete") || !strings.Contains(r.Note, "1234") {
		t.Errorf("lost %d, note %q; want 1234 and a note saying it is incomplete", r.Lost, r.Note)
	}
}

func TestBuildOfNoRecordsHasEmptyListsNotNulls(t *testing.T) {
	in := fixture()
	in.Records = nil
	data, err := json.Marshal(Build(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"requests":[]`, `"ids":[]`, `"by_status":{}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s:\n%s", want, data)
		}
	}
}

func TestBuildNamesAtMostMaxUsersAndCountsThemAll(t *testing.T) {
	in := fixture()
	in.Records = nil
	for i := range MaxUsers + 5 {
		in.Records = append(in.Records, journal.Record{Method: "GET", User: "user-" + strconv.Itoa(i)})
	}
	r := Build(in)
	if r.Users.Count != MaxUsers+5 || len(r.Users.IDs) != MaxUsers || !slices.IsSorted(r.Users.IDs) {
		t.Errorf("users: count %d, %d named (sorted %v); want %d and %d", r.Users.Count, len(r.Users.IDs), slices.IsSorted(r.Users.IDs), MaxUsers+5, MaxUsers)
	}
}

func TestIDIsTheRollbackTimeAndAFileSafeVersion(t *testing.T) {
	at := time.Date(2026, 12, 1, 11, 15, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		version, want string
	}{
		{"v2", "20261201T101500Z-v2"},
		{"1.4.0-rc1", "20261201T101500Z-1.4.0-rc1"},
		{"../../etc/passwd", "20261201T101500Z-.._.._etc_passwd"},
		{"a b/c", "20261201T101500Z-a_b_c"},
		{"", "20261201T101500Z-unknown"},
	}
	for _, tt := range tests {
		if got := ID(at, tt.version); got != tt.want {
			t.Errorf("ID(%q) = %q, want %q", tt.version, got, tt.want)
		}
		if !validID(ID(at, tt.version)) {
			t.Errorf("ID(%q) is not a valid id", tt.version)
		}
	}
}
