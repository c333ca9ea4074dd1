package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

// records waits until j holds n records and returns them.
func records(t *testing.T, j *journal.Journal, n int) []journal.Record {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("%d journal records", n), func() bool { return j.Seq() >= uint64(n) })
	recs, _ := j.After(0, nil)
	if len(recs) != n {
		t.Fatalf("the journal holds %d records, want %d", len(recs), n)
	}
	return recs
}

func TestTheJournalGetsExactlyTheCanaryServedRequests(t *testing.T) {
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	pol := versioned
	pol.StickyHeader = "X-User-ID"
	r := startProxyPolicy(t, defaults, pol, stable("v1", 1, v1.Addr()), canary("v2", 1, v2.Addr()))
	j := journal.New(1000, 0)
	r.proxy.SetJournal(j)

	type sent struct{ id, method, path, user string }
	var onCanary []sent
	c := newClient(t)
	begin := time.Now()
	for i := range 40 {
		method := []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut}[i%4]
		path := fmt.Sprintf("/orders/%d", i)
		req, _ := http.NewRequest(method, r.url(path+"?token=secret&user=ann#frag"), strings.NewReader("x"))
		user := ""
		if i%3 == 0 {
			user = fmt.Sprintf("user-%d", i)
			req.Header.Set("X-User-ID", user)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "v1" && string(body) != "v2" {
			t.Fatalf("%s %s: unexpected answer %q", method, path, body)
		}
		if string(body) == "v2" {
			onCanary = append(onCanary, sent{resp.Header.Get("X-Request-Id"), method, path, user})
		}
	}
	if len(onCanary) == 0 || len(onCanary) == 40 {
		t.Fatalf("%d of 40 requests went to the canary: the test needs both", len(onCanary))
	}
	recs := records(t, j, len(onCanary))
	byID := map[string]journal.Record{}
	for _, rec := range recs {
		byID[rec.RequestID] = rec
	}
	for _, s := range onCanary {
		rec, ok := byID[s.id]
		if !ok {
			t.Errorf("%s %s (id %s) went to the canary and is not in the journal", s.method, s.path, s.id)
			continue
		}
		want := journal.Record{Seq: rec.Seq, Time: rec.Time, RequestID: s.id, Method: s.method, Path: s.path,
			Status: 200, BytesIn: 1, BytesOut: 2, DurationMs: rec.DurationMs, Upstream: "v2", Version: "v2", User: s.user}
		if rec != want {
			t.Errorf("journal record\n  %+v\nwant\n  %+v", rec, want)
		}
		if rec.Time.Before(begin.Add(-time.Second)) || rec.Time.After(time.Now()) || rec.DurationMs <= 0 {
			t.Errorf("%s: time %v, duration %v ms: not this request's", s.id, rec.Time, rec.DurationMs)
		}
		if strings.ContainsAny(rec.Path, "?#") || strings.Contains(rec.Path, "secret") {
			t.Errorf("%s: path %q carries the query string", s.id, rec.Path)
		}
	}
}

func TestTheJournalRecordsACanaryThatGaveNoAnswer(t *testing.T) {
	// It reads the request and hangs up: the POST may have done its work.
	hangsUp := rawBackend(t, func(c *net.TCPConn) {
		if req, err := readHead(bufio.NewReader(c)); err == nil {
			io.Copy(io.Discard, req.Body)
		}
	})
	r := startProxyPolicy(t, defaults, versioned, canary("v2", 1, hangsUp))
	j := journal.New(10, 0)
	r.proxy.SetJournal(j)
	status, _ := post(t, newClient(t), r.url("/pay?card=4111"), "amount=5")
	if status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", status)
	}
	rec := records(t, j, 1)[0]
	if rec.Status != 0 || rec.Method != "POST" || rec.Path != "/pay" || rec.Upstream != "v2" || rec.RequestID == "" || rec.BytesIn != 8 {
		t.Errorf("journal record %+v, want POST /pay on v2 with status 0, 8 bytes in and an id", rec)
	}
}

func TestTheJournalLeavesOutWhatNeverReachedTheCanary(t *testing.T) {
	r := startProxyPolicy(t, defaults, versioned, canary("v2", 1, testkit.FreeAddr(t)))
	j := journal.New(10, 0)
	r.proxy.SetJournal(j)
	if status, _ := post(t, newClient(t), r.url("/pay"), "amount=5"); status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", status)
	}
	r.idle(t)
	if n := j.Seq(); n != 0 {
		t.Errorf("the journal holds %d records of a request the canary refused, want none", n)
	}
}

func TestTheJournalTimesAStreamedResponseToItsEnd(t *testing.T) {
	const pause = 300 * time.Millisecond
	be := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		time.Sleep(pause)
		io.WriteString(w, "and last")
	}))
	r := startProxyPolicy(t, defaults, versioned, canary("v2", 1, be.Addr()))
	j := journal.New(10, 0)
	r.proxy.SetJournal(j)
	if _, body := get(t, newClient(t), r.url("/stream")); body != "first and last" {
		t.Fatalf("body %q", body)
	}
	rec := records(t, j, 1)[0]
	if rec.DurationMs < float64(pause.Milliseconds()) || rec.BytesOut != int64(len("first and last")) {
		t.Errorf("journal record: %v ms, %d bytes out; want at least %v and %d", rec.DurationMs, rec.BytesOut, pause, len("first and last"))
	}
}

func TestTheJournalKeepsBodiesOnlyWhenAskedAndBounded(t *testing.T) {
	be, _ := recorderDraining(t)
	big := strings.Repeat("0123456789", 100_000) // 1 MB, streamed
	for _, c := range []struct {
		name      string
		limit     int
		method    string
		body      string
		want      string
		truncated bool
	}{
		{"bodies off", 0, http.MethodPost, "amount=5", "", false},
		{"short", 16, http.MethodPost, "amount=5", "amount=5", false},
		{"at the limit", 8, http.MethodPut, "amount=5", "amount=5", false},
		{"longer", 4, http.MethodPatch, "amount=5", "amou", true},
		{"streamed", 16, http.MethodDelete, big, big[:16], true},
		{"not a change", 16, http.MethodGet, "amount=5", "", false},
	} {
		r := startProxyPolicy(t, defaults, versioned, canary("v2", 1, be))
		j := journal.New(10, c.limit)
		r.proxy.SetJournal(j)
		req, _ := http.NewRequest(c.method, r.url("/"), strings.NewReader(c.body))
		if status, _ := do(t, newClient(t), req); status != http.StatusOK {
			t.Fatalf("%s: status %d", c.name, status)
		}
		rec := records(t, j, 1)[0]
		if rec.Body != c.want || rec.BodyTruncated != c.truncated || rec.BytesIn != int64(len(c.body)) {
			t.Errorf("%s: body %.20q (truncated %v, %d bytes in), want %.20q (truncated %v, %d bytes in)",
				c.name, rec.Body, rec.BodyTruncated, rec.BytesIn, c.want, c.truncated, len(c.body))
		}
	}
}

// recorderDraining is a backend that reads every request body whole and
// answers "ok".
func recorderDraining(t *testing.T) (string, *testkit.Server) {
	be := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	return be.Addr(), be
}

func TestTheJournalKeepsNothingOfStableRequests(t *testing.T) {
	be := testkit.StartBackend(t, "v1")
	r := startProxyPolicy(t, defaults, versioned, stable("v1", 1, be.Addr()), canary("v2", 1, testkit.FreeAddr(t)))
	r.router.SetMode(state.RolledBack)
	j := journal.New(10, 64)
	r.proxy.SetJournal(j)
	c := newClient(t)
	for range 5 {
		post(t, c, r.url("/"), "x")
	}
	r.idle(t)
	if n := j.Seq(); n != 0 {
		t.Errorf("the journal holds %d records of stable requests, want none", n)
	}
}

func TestARequestRetriedOnStableIsNotInTheJournal(t *testing.T) {
	hangsUp := rawBackend(t, func(c *net.TCPConn) { readHead(bufio.NewReader(c)) })
	be := testkit.StartBackend(t, "v1")
	// The canary, picked first at 10:1, hangs up on the GET, which is
	// retried on the stable upstream: that is where it was served.
	r := startProxyPolicy(t, defaults, versioned, canary("v2", 10, hangsUp), stable("v1", 1, be.Addr()))
	j := journal.New(10, 0)
	r.proxy.SetJournal(j)
	if _, body := get(t, newClient(t), r.url("/")); body != "v1" {
		t.Fatalf("body %q, want v1 from the retry", body)
	}
	if r.failures(t, "v2") != 1 {
		t.Fatalf("the canary failed %d times, want 1: the test did not go through it", r.failures(t, "v2"))
	}
	r.idle(t)
	if n := j.Seq(); n != 0 {
		t.Errorf("the journal holds %d records, want none", n)
	}
}
