package journal

import (
	"fmt"
	"math/rand/v2"
	"strconv"
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
	if len(r.User) != KeyMax || !r.PathTruncated || !strings.HasPrefix(string(e.Path), r.Path) || len(r.Path) != PathMax {
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

// BenchmarkAddCanary: requests as a canary sees them, ids, users and paths
// changing from one to the next.
func BenchmarkAddCanary(b *testing.B) {
	j := New(100000, 0)
	es := make([]*Entry, 4096)
	for i := range es {
		es[i] = canaryEntry(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j.Add(es[i%len(es)])
		i++
	}
}

// canaryEntry is request i of a canary behind canaryd as it runs: an id
// canaryd made, one of a thousand users, one of fifty paths.
func canaryEntry(i int) *Entry {
	e := entry(i)
	e.RequestID = fmt.Appendf(nil, "0k3f9qzv2m8xa-%s", strconv.FormatUint(uint64(3*i+1), 36))
	e.UserKey = fmt.Appendf(nil, "user-%d", i*7919%1000)
	e.Path = fmt.Appendf(nil, "/api/v2/orders/%d", i*31%50)
	e.Method = []byte("GET")
	e.Duration = time.Duration(800+i%5000) * time.Microsecond
	return e
}

// TestTypicalRecordsTakeAboutTwentyBytes: the README promises 100 000 canary
// requests in about 2 MiB.
func TestTypicalRecordsTakeAboutTwentyBytes(t *testing.T) {
	j := New(100000, 0)
	for i := range 300000 {
		j.Add(canaryEntry(i))
	}
	blocks := len(j.blocks)
	if j.spare != nil {
		blocks++
	}
	t.Logf("100 000 records in %.2f MiB", float64(blocks*j.size)/(1<<20))
	if mem := blocks * j.size; mem > 3<<20 {
		t.Errorf("100 000 records take %d blocks, %.1f MiB; want under 3", blocks, float64(mem)/(1<<20))
	}
	got, lost := j.After(0, nil)
	if len(got) != 100000 || lost != 200000 {
		t.Fatalf("%d records, %d lost; want 100000, 200000", len(got), lost)
	}
	for i, r := range got {
		e := canaryEntry(200000 + i)
		if r.RequestID != string(e.RequestID) || r.User != string(e.UserKey) || r.Path != string(e.Path) ||
			!r.Time.Equal(e.Time) || r.DurationMs != float64(e.Duration)/float64(time.Millisecond) || r.Method != "GET" {
			t.Fatalf("record %d = %+v, from %+v", i, r, e)
		}
	}
}

// TestUnlikeLongRecordsStayWithinTheBound: records full of long random
// values, as a hostile client would send to the canary, keep the memory
// under BytesPerRecord a record, and the journal keeps the newest that fit.
func TestUnlikeLongRecordsStayWithinTheBound(t *testing.T) {
	const n = 2000
	j := New(n, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	long := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return b
	}
	var last *Entry
	for i := range 3 * n {
		e := entry(i)
		e.RequestID, e.UserKey, e.Path, e.Method = long(IDMax), long(KeyMax), long(PathMax), []byte("BREW")
		j.Add(e)
		last = e
	}
	if mem := len(j.blocks) * j.size; mem > n*BytesPerRecord {
		t.Errorf("%d blocks of %d bytes, over the bound of %d", len(j.blocks), j.size, n*BytesPerRecord)
	}
	got, lost := j.After(0, nil)
	if len(got) == 0 || uint64(len(got))+lost != 3*n || got[len(got)-1].Path != string(last.Path) || got[len(got)-1].Method != "BREW" {
		t.Fatalf("%d records, %d lost", len(got), lost)
	}
	t.Logf("%d of %d long records kept", len(got), n)
}

// TestIDsLikeCanarydsButNotQuiteComeBackAsTheyWere: an id that looks like a
// prefix and a counter but would not be rebuilt byte for byte is kept as
// it came.
func TestIDsLikeCanarydsButNotQuiteComeBackAsTheyWere(t *testing.T) {
	ids := []string{"abc-0", "abc-00", "abc-01", "abc-zz", "abc-ZZ", "-1", "abc-", "abc", "a-b-c", "x-zzzzzzzzzzzz", "x-zzzzzzzzzzzzz", "abc-1", "abd-2", "abc-3"}
	j := New(100, 0)
	for i, id := range ids {
		e := entry(i)
		e.RequestID = []byte(id)
		j.Add(e)
	}
	got, _ := j.After(0, nil)
	for i, r := range got {
		if r.RequestID != ids[i] {
			t.Errorf("id %q came back as %q", ids[i], r.RequestID)
		}
	}
}

// TestAReaderAcrossManyBlocksMissesNothing: After reads block by block and
// counts what fell out while it read.
func TestAReaderAcrossManyBlocksMissesNothing(t *testing.T) {
	j := New(50000, 0)
	for i := range 50000 {
		j.Add(canaryEntry(i))
	}
	if len(j.blocks) < 3 {
		t.Fatalf("%d blocks; the test wants several", len(j.blocks))
	}
	for _, from := range []uint64{0, 1, 12345, 49999, 50000} {
		got, lost := j.After(from, nil)
		if lost != 0 || uint64(len(got)) != 50000-from || (len(got) > 0 && got[0].Seq != from+1) {
			t.Errorf("after %d: %d records, %d lost", from, len(got), lost)
		}
	}
}
