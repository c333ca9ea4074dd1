package incident

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/journal"
)

// reportAt is the fixture's report, rolled back minutes after the first.
func reportAt(minutes int) Report {
	in := fixture()
	in.RolledBack = rolledBack.Add(time.Duration(minutes) * time.Minute)
	return Build(in)
}

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(t *testing.T, s *Store) []string {
	t.Helper()
	sums, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, sum := range sums {
		out = append(out, sum.ID)
	}
	return out
}

func TestWrittenReportsAreListedNewestFirstAndReadBackWhole(t *testing.T) {
	s := open(t)
	want := reportAt(0)
	path, err := s.Write(want, 100, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(s.Dir(), want.ID+".json") {
		t.Errorf("written to %s", path)
	}
	if _, err := s.Write(reportAt(5), 100, 64<<20); err != nil {
		t.Fatal(err)
	}
	sums, err := s.List()
	if err != nil || len(sums) != 2 {
		t.Fatalf("List: %v, %v", sums, err)
	}
	if sums[0].ID != "20261201T102000Z-v2" || sums[1].ID != want.ID {
		t.Errorf("listed %s, %s; want the newest first", sums[0].ID, sums[1].ID)
	}
	if got := sums[1]; got.Version != "v2" || got.Cause != want.Cause || !got.Started.Equal(started) ||
		!got.RolledBack.Equal(rolledBack) || got.Requests != 4 || got.Users != 3 || got.Served != 7 || got.Path != path {
		t.Errorf("summary %+v", got)
	}
	got, err := s.Get(want.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Errorf("Get returned\n%s\nwant\n%s", a, b)
	}
}

func TestAReportWithTheSameIDGetsASuffix(t *testing.T) {
	s := open(t)
	for range 3 {
		if _, err := s.Write(reportAt(0), 100, 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"20261201T101500Z-v2-3", "20261201T101500Z-v2-2", "20261201T101500Z-v2"}
	if got := ids(t, s); !slices.Equal(got, want) {
		t.Errorf("ids %v, want %v", got, want)
	}
	if r, err := s.Get("20261201T101500Z-v2-2"); err != nil || r.ID != "20261201T101500Z-v2-2" {
		t.Errorf("Get of the second: id %q, %v", r.ID, err)
	}
}

func TestPruningRemovesTheOldestButNeverTheNewest(t *testing.T) {
	size := func() int64 {
		data, _ := json.MarshalIndent(reportAt(0), "", " ")
		return int64(len(data) + 1)
	}()
	tests := []struct {
		name     string
		keep     int
		maxBytes int64
		want     int // reports left after five writes
	}{
		{"by count", 3, 64 << 20, 3},
		{"by size", 100, 2*size + size/2, 2},
		{"a size limit below one report keeps the newest", 100, 10, 1},
		{"keep 1", 1, 64 << 20, 1},
		{"no limits", 0, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			var written []string
			for i := range 5 {
				r := reportAt(i)
				if _, err := s.Write(r, tt.keep, tt.maxBytes); err != nil {
					t.Fatal(err)
				}
				written = append(written, r.ID)
			}
			slices.Reverse(written)
			if got := ids(t, s); !slices.Equal(got, written[:tt.want]) {
				t.Errorf("left %v, want the newest %d: %v", got, tt.want, written[:tt.want])
			}
		})
	}
}

// TestATornReportIsKeptAsideAndListedNowhere: a report a failing card
// tore is named once, in the error of the list that finds it, and renamed
// aside; the whole reports are listed, then and after, without an error.
func TestATornReportIsKeptAsideAndListedNowhere(t *testing.T) {
	s := open(t)
	if _, err := s.Write(reportAt(0), 100, 64<<20); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(reportAt(45))
	for name, content := range map[string][]byte{
		"20261201T110000Z-v3.json": data[:len(data)/2],
		"20261201T120000Z-v3.json": []byte("\x00\x00\x00\x00"),
		"20261201T130000Z-v3.json": data, // whole, but of another id
	} {
		if err := os.WriteFile(filepath.Join(s.Dir(), name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := s.List()
	if !errors.Is(err, ErrUnreadable) || strings.Count(err.Error(), ".corrupt") != 3 {
		t.Errorf("List error %v, want one naming the three files kept aside", err)
	}
	if len(sums) != 1 || sums[0].ID != "20261201T101500Z-v2" {
		t.Errorf("listed %+v, want the whole report only", sums)
	}
	for _, id := range []string{"20261201T110000Z-v3", "20261201T120000Z-v3", "20261201T130000Z-v3"} {
		if _, err := os.Stat(filepath.Join(s.Dir(), id+".json.corrupt")); err != nil {
			t.Errorf("%s was not kept aside: %v", id, err)
		}
		if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of the torn report %s: %v, want ErrNotFound", id, err)
		}
	}
	if sums, err := s.List(); err != nil || len(sums) != 1 {
		t.Errorf("listed again: %+v, %v; want the whole report and no error", sums, err)
	}
}

func TestATemporaryFileACrashLeftIsIgnoredThenRemovedAtOpen(t *testing.T) {
	s := open(t)
	tmp := filepath.Join(s.Dir(), ".20261201T101500Z-v2.json.tmp-123")
	if err := os.WriteFile(tmp, []byte(`{"id": "20261201T1`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s); len(got) != 0 {
		t.Errorf("listed %v from a temporary file", got)
	}
	if _, err := Open(filepath.Dir(s.Dir())); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file is still there after Open: %v", err)
	}
}

func TestGetRefusesUnknownAndMalformedIDs(t *testing.T) {
	s := open(t)
	if _, err := s.Write(reportAt(0), 100, 64<<20); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want error
	}{
		{"20261201T101500Z-v9", ErrNotFound},
		{"../latch", ErrInvalidID},
		{"incidents/20261201T101500Z-v2", ErrInvalidID},
		{`..\x`, ErrInvalidID},
		{".20261201T101500Z-v2.json.tmp-1", ErrInvalidID},
		{"", ErrInvalidID},
	}
	for _, tt := range tests {
		if _, err := s.Get(tt.id); !errors.Is(err, tt.want) {
			t.Errorf("Get(%q): %v, want %v", tt.id, err, tt.want)
		}
	}
}

func TestWriteRefusesAReportWithoutAnID(t *testing.T) {
	s := open(t)
	if _, err := s.Write(Report{}, 100, 64<<20); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Write of a report without an id: %v, want ErrInvalidID", err)
	}
	if entries, _ := os.ReadDir(s.Dir()); len(entries) != 0 {
		t.Errorf("it left %d files", len(entries))
	}
}

func TestReportsAreKeptAcrossReopening(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, err := s.Write(reportAt(0), 100, 64<<20); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s2); !slices.Equal(got, []string{"20261201T101500Z-v2"}) {
		t.Errorf("after reopening: %v", got)
	}
}

// writerEnv makes the test binary a child that writes reports into the
// state directory it names until it is killed.
const writerEnv = "INCIDENT_TEST_WRITER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(writerEnv); dir != "" {
		writeForever(dir)
	}
	os.Exit(m.Run())
}

func writeForever(dir string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	in := fixture()
	for i := range 300 { // a report of some size: a write takes a while
		in.Records = append(in.Records, journal.Record{Method: "POST", Path: "/orders", RequestID: fmt.Sprint(i), Time: started})
	}
	fmt.Println("writing")
	for i := 0; ; i++ {
		in.RolledBack = rolledBack.Add(time.Duration(i) * time.Second)
		if _, err := s.Write(Build(in), 20, 1<<20); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("written")
	}
}

func TestSIGKILLWhileWritingLeavesEveryReportWholeOrAbsent(t *testing.T) {
	dir := t.TempDir()
	midWrite := 0 // kills that left a temporary file: a write was cut short
	for i := range 50 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			if errors.Is(err, syscall.ENOEXEC) {
				// scripts/test-arm.sh runs ARM test binaries under
				// qemu-user explicitly; the kernel cannot start one itself.
				t.Skipf("cannot re-exec the test binary on this machine: %v", err)
			}
			t.Fatal(err)
		}
		// Wait for the writer to start and, in two runs of three, for
		// a report or two to be whole, so that some are written however
		// slow the machine (an emulated ARM one is); then kill it at a
		// moment that varies from run to run.
		lines := bufio.NewReader(out)
		for range 1 + i%3 {
			if _, err := lines.ReadString('\n'); err != nil {
				t.Fatalf("run %d: the writer did not go on: %v", i, err)
			}
		}
		time.Sleep(time.Duration(i%10) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("run %d: the writer ended by itself: %v", i, err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, DirName, ".*.tmp-*")); len(left) > 0 {
			midWrite++
		}
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := s.List()
	if err != nil {
		t.Fatalf("after 50 kills: %v", err)
	}
	if len(sums) == 0 {
		t.Fatal("no report was written in 50 runs")
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s: a temporary file is still there after Open", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.Dir(), e.Name()))
		var r Report
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil || len(r.Requests) != 304 {
			t.Errorf("%s: %d requests, %v; want a whole report", e.Name(), len(r.Requests), err)
		}
	}
	t.Logf("after 50 kills, %d of them mid-write: %d reports, all whole", midWrite, len(sums))
}

// TestOnlyTheNewestReportsSetAsideAreKept: a card that tears report after
// report does not fill up with them; each write keeps the newest ten.
func TestOnlyTheNewestReportsSetAsideAreKept(t *testing.T) {
	s := open(t)
	for i := range 15 {
		name := fmt.Sprintf("20261201T%02d0000Z-v3.json", i)
		if err := os.WriteFile(filepath.Join(s.Dir(), name), []byte("\x00torn"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.List(); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("List: %v, want the torn reports named", err)
	}
	if _, err := s.Write(reportAt(0), 100, 64<<20); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir(), "*.corrupt"))
	if len(left) != keptAside || filepath.Base(left[0]) != "20261201T050000Z-v3.json.corrupt" {
		t.Errorf("kept aside %d, from %s; want the newest %d, from 05:00", len(left), filepath.Base(left[0]), keptAside)
	}
	if sums, err := s.List(); err != nil || len(sums) != 1 {
		t.Errorf("listed %+v, %v; want the one whole report", sums, err)
	}
}
