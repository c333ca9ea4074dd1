package journal

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lines reads a JSON-lines file.
func lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: a line that is not JSON: %q", path, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestTheFileGetsTheRecordsFromWhenItIsTurnedOn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j := New(100, 0)
	w := NewFile(j, dir)
	j.Add(entry(0))
	if err := w.Flush(t0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.Path()); !os.IsNotExist(err) {
		t.Fatalf("off, the file exists: %v", err)
	}
	w.Configure(true, 1<<20)
	j.Add(entry(1))
	j.Add(entry(2))
	if err := w.Flush(t0); err != nil {
		t.Fatal(err)
	}
	j.Add(entry(3))
	if err := w.Close(t0); err != nil {
		t.Fatal(err)
	}
	got := lines(t, w.Path())
	if len(got) != 3 || got[0]["request_id"] != "req-1" || got[2]["request_id"] != "req-3" || got[1]["path"] != "/orders" {
		t.Errorf("file lines %v; want req-1 to req-3", got)
	}
}

func TestTheFileRotatesAndKeepsOneOld(t *testing.T) {
	dir := t.TempDir()
	j := New(1000, 0)
	w := NewFile(j, dir)
	w.Configure(true, 4096)
	for i := range 200 {
		j.Add(entry(i))
		if i%10 == 9 {
			if err := w.Flush(t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Close(t0)
	for _, p := range []string{w.Path(), w.Path() + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 4096 {
			t.Errorf("%s is %d bytes, past the 4096 limit", p, st.Size())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("files %v, want the file and one old one", entries)
	}
	last := lines(t, w.Path())
	if last[len(last)-1]["request_id"] != "req-199" {
		t.Errorf("the newest record is not the file's last: %v", last[len(last)-1])
	}
}

func TestTheFileSaysWhatTheRingLostBeforeItWasWritten(t *testing.T) {
	j := New(10, 0)
	w := NewFile(j, t.TempDir())
	w.Configure(true, 1<<20)
	for i := range 25 {
		j.Add(entry(i))
	}
	w.Close(t0)
	got := lines(t, w.Path())
	if len(got) != 11 || got[0]["lost"] != float64(15) || !strings.HasPrefix(got[1]["request_id"].(string), "req-15") {
		t.Errorf("lines %v; want a lost 15 line, then req-15 to req-24", got)
	}
}
