package journal

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func entry(i int) *Entry {
	return &Entry{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Duration: 1500 * time.Microsecond,
		RequestID: fmt.Appendf(nil, "req-%d", i), Method: []byte("POST"), Path: []byte("/orders"),
		UserKey: []byte("user-7"), Status: 201, BytesIn: 12, BytesOut: 34, Upstream: "w2", Version: "v2",
	}
}

func TestRecordsComeBackAsTheyWereServed(t *testing.T) {
	j := New(10, 0)
	for i := range 3 {
		j.Add(entry(i))
	}
	got, lost := j.After(0, nil)
	if lost != 0 || len(got) != 3 {
		t.Fatalf("%d records, %d lost; want 3, 0", len(got), lost)
	}
	want := Record{Seq: 2, Time: t0.Add(time.Millisecond), RequestID: "req-1", Method: "POST", Path: "/orders",
		Status: 201, BytesIn: 12, BytesOut: 34, DurationMs: 1.5, Upstream: "w2", Version: "v2", User: "user-7"}
	if got[1] != want {
		t.Errorf("record 2 = %+v\nwant       %+v", got[1], want)
	}
	if after, _ := j.After(2, nil); len(after) != 1 || after[0].RequestID != "req-2" {
		t.Errorf("after seq 2: %+v", after)
	}
	if j.Seq() != 3 {
		t.Errorf("seq %d, want 3", j.Seq())
	}
}

// TestTheRingKeepsTheNewest: past its size the oldest go, and a reader
// learns how many it missed.
func TestTheRingKeepsTheNewest(t *testing.T) {
	j := New(1000, 0)
	for i := range 2500 {
		j.Add(entry(i))
	}
	got, lost := j.After(0, nil)
	if len(got) != 1000 || lost != 1500 || got[0].RequestID != "req-1500" || got[999].RequestID != "req-2499" {
		t.Fatalf("%d records from %s to %s, %d lost; want 1000 from req-1500 to req-2499, 1500 lost",
			len(got), got[0].RequestID, got[len(got)-1].RequestID, lost)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Fatalf("records out of order at %d: %d after %d", i, got[i].Seq, got[i-1].Seq)
		}
	}
	canary := func(r *Record) bool { return strings.HasSuffix(r.RequestID, "0") }
	if some, _ := j.After(0, canary); len(some) != 100 {
		t.Errorf("keep chose %d records, want 100", len(some))
	}
}

func TestLongValuesAreCutAndSaySo(t *testing.T) {
	j := New(4, 0)
	e := entry(0)
	e.RequestID = []byte(strings.Repeat("i", IDMax))
	e.UserKey = []byte(strings.Repeat("k", 100))
	e.Path = []byte("/" + strings.Repeat("p", 300))
	e.Method = []byte("PROPPATCHX")
	j.Add(e)
	got, _ := j.After(0, nil)
	r := got[0]
	if r.RequestID != string(e.RequestID) {
		t.Errorf("a %d-byte id was cut to %q", IDMax, r.RequestID)
	}
	if len(r.User) != KeyMax || !r.PathTruncated || !strings.HasPrefix(string(e.Path), r.Path) || len(r.Path) != textBytes-IDMax-KeyMax {
		t.Errorf("cut record: user %d bytes, path %d bytes (truncated %v)", len(r.User), len(r.Path), r.PathTruncated)
	}
	if r.Method != "PROPPATC" {
		t.Errorf("method %q", r.Method)
	}
}

func TestBodiesAreKeptOnlyWhenAsked(t *testing.T) {
	off := New(4, 0)
	if off.BodyLimit() != 0 {
		t.Errorf("body limit %d with bodies off", off.BodyLimit())
	}
	e := entry(0)
	e.Body = []byte(`{"qty": 12345}`)
	off.Add(e)
	if got, _ := off.After(0, nil); got[0].Body != "" {
		t.Errorf("bodies off kept %q", got[0].Body)
	}
	on := New(4, 8)
	on.Add(e)
	on.Add(entry(1))
	got, _ := on.After(0, nil)
	if got[0].Body != `{"qty": ` || !got[0].BodyTruncated || got[1].Body != "" {
		t.Errorf("bodies: %q (truncated %v), %q", got[0].Body, got[0].BodyTruncated, got[1].Body)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	j := New(100, 0)
	e := entry(1)
	j.Add(e) // the first sight of the names interns them
	if n := testing.AllocsPerRun(1000, func() { j.Add(e) }); n != 0 {
		t.Errorf("Add allocates %v times", n)
	}
}

func TestAZeroJournalKeepsNothing(t *testing.T) {
	var none *Journal
	none.Add(entry(0))
	empty := New(0, 100)
	empty.Add(entry(0))
	if got, _ := empty.After(0, nil); got != nil || empty.Seq() != 0 || none.BodyLimit() != 0 {
		t.Errorf("a journal of 0 records kept %v", got)
	}
}

// TestReadersAndWritersTogether: records read while others are added are
// whole and in order (run with -race).
func TestReadersAndWritersTogether(t *testing.T) {
	j := New(2000, 16)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				j.Add(entry(w*10000 + i))
			}
		})
	}
	for range 20 {
		got, _ := j.After(0, nil)
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq || got[i].Method != "POST" || got[i].Path != "/orders" {
				t.Fatalf("record %d torn or out of order: %+v after %+v", i, got[i], got[i-1])
			}
		}
	}
	wg.Wait()
	if j.Seq() != 20000 {
		t.Errorf("seq %d after 20000 adds", j.Seq())
	}
}

func BenchmarkAdd(b *testing.B) {
	j := New(100000, 0)
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		j.Add(e)
	}
}

// TestARecordTakesAQuarterKilobyte: the README and the config reference
// promise 256 bytes a record, 25 MiB at the default 100 000.
func TestARecordTakesAQuarterKilobyte(t *testing.T) {
	if RecordBytes != 256 {
		t.Errorf("a record takes %d bytes; the README says 256", RecordBytes)
	}
}
