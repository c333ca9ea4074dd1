package watch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// started runs a watcher on dir and returns the channel its signals go to.
func started(t *testing.T, dir string, opts Options) <-chan struct{} {
	t.Helper()
	if opts.Quiet == 0 {
		opts.Quiet = 150 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan struct{}, 100)
	w := New(dir, opts)
	done := make(chan struct{})
	go func() {
		w.Run(ctx, func() { signals <- struct{}{} })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The watch is in place once it signals its start.
	select {
	case <-signals:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not start")
	}
	return signals
}

// expectSignals waits for want signals, then makes sure no more come.
func expectSignals(t *testing.T, signals <-chan struct{}, want int) {
	t.Helper()
	for i := range want {
		select {
		case <-signals:
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d signals, want %d", i, want)
		}
	}
	select {
	case <-signals:
		t.Fatalf("got more than %d signals", want)
	case <-time.After(600 * time.Millisecond):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEachKindOfEditIsOneSignal(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, dir string)
	}{
		{"in-place write", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "a.toml"), "x = 2\n")
		}},
		{"atomic rename over", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, ".a.toml.tmp"), "x = 3\n")
			os.Rename(filepath.Join(dir, ".a.toml.tmp"), filepath.Join(dir, "a.toml"))
		}},
		{"new file", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "b.toml"), "y = 1\n")
		}},
		{"removed file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "a.toml"))
		}},
		{"vim save with swap and backup files", func(t *testing.T, dir string) {
			a := filepath.Join(dir, "a.toml")
			write(t, filepath.Join(dir, ".a.toml.swp"), "swap")
			os.Rename(a, a+"~")
			write(t, a, "x = 4\n")
			os.Chmod(a, 0o640)
			os.Remove(a + "~")
			os.Remove(filepath.Join(dir, ".a.toml.swp"))
		}},
		{"write in many small steps", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, "a.toml"), os.O_WRONLY|os.O_TRUNC, 0)
			for range 20 {
				f.WriteString("# line\n")
			}
			f.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "a.toml"), "x = 1\n")
			signals := started(t, dir, Options{})
			tt.edit(t, dir)
			expectSignals(t, signals, 1)
		})
	}
}

func TestKubernetesDataSymlinkSwapIsOneSignal(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "..2026_01"), 0o755)
	write(t, filepath.Join(dir, "..2026_01", "a.toml"), "x = 1\n")
	os.Symlink("..2026_01", filepath.Join(dir, "..data"))
	os.Symlink("..data/a.toml", filepath.Join(dir, "a.toml"))
	signals := started(t, dir, Options{})

	// What the kubelet does: a new timestamped dir, a temporary link to it
	// renamed over ..data, then the old dir removed.
	os.Mkdir(filepath.Join(dir, "..2026_02"), 0o755)
	write(t, filepath.Join(dir, "..2026_02", "a.toml"), "x = 2\n")
	os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp"))
	os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	os.RemoveAll(filepath.Join(dir, "..2026_01"))
	expectSignals(t, signals, 1)
}

func TestIrrelevantFilesAreIgnored(t *testing.T) {
	dir := t.TempDir()
	signals := started(t, dir, Options{})
	write(t, filepath.Join(dir, ".a.toml.swp"), "swap")
	write(t, filepath.Join(dir, "a.toml~"), "backup")
	write(t, filepath.Join(dir, "notes.txt"), "hello")
	write(t, filepath.Join(dir, "a.toml.dpkg-new"), "x = 1\n")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	expectSignals(t, signals, 0)
}

func TestDirectoryRemovedAndRecreatedIsSurvived(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "conf")
	os.Mkdir(dir, 0o755)
	write(t, filepath.Join(dir, "a.toml"), "x = 1\n")
	logs := &testkit.SyncBuffer{}
	signals := started(t, dir, Options{Poll: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	os.RemoveAll(dir)
	testkit.Eventually(t, 10*time.Second, "the watcher to see the directory gone", func() bool {
		return strings.Contains(logs.String(), "the config directory is gone")
	})
	os.Mkdir(dir, 0o755)
	// Back, the watch signals once as it starts again, as at its first start.
	select {
	case <-signals:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after the directory came back")
	}
	// And it works again afterwards: one signal per edit.
	for _, x := range []string{"2", "3"} {
		write(t, filepath.Join(dir, "a.toml"), "x = "+x+"\n")
		select {
		case <-signals:
		case <-time.After(5 * time.Second):
			t.Fatalf("no signal for an edit (x = %s) after the directory came back", x)
		}
	}
}

func TestPollingSeesChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.toml"), "x = 1\n")
	signals := started(t, dir, Options{Poll: 100 * time.Millisecond, noInotify: true})
	write(t, filepath.Join(dir, "a.toml"), "x = 22\n")
	expectSignals(t, signals, 1)
	write(t, filepath.Join(dir, ".a.toml.swp"), "swap")
	expectSignals(t, signals, 0)
	os.Remove(filepath.Join(dir, "a.toml"))
	expectSignals(t, signals, 1)
}

func TestRelevant(t *testing.T) {
	for name, want := range map[string]bool{
		"a.toml": true, "..data": true, "..2026_11_26": true, "..data_tmp": true,
		".a.toml": false, ".a.toml.swp": false, "a.toml~": false, "a.toml.dpkg-new": false,
		"4913": false, "notes.txt": false,
	} {
		if got := Relevant(name); got != want {
			t.Errorf("Relevant(%q) = %v, want %v", name, got, want)
		}
	}
}
