// Package watch tells when a config directory may have changed. It watches
// the directory itself (not the files, which editors and config tools
// replace rather than rewrite) with inotify, coalesces each burst of events
// into one signal, and falls back to polling when inotify cannot be used or
// the directory disappears.
package watch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/canary-pi/canary-pi/appliance/config"
)

// Options tune a Watcher; the zero value is sensible.
type Options struct {
	// Quiet is how long the directory must stay still before a burst of
	// events becomes a signal (default 100ms).
	Quiet time.Duration
	// MaxDelay bounds the wait from the first event of a burst to its
	// signal, so a directory that never stays still is still applied
	// (default 400ms).
	MaxDelay time.Duration
	// Poll is the polling interval when inotify is not used (default 500ms).
	Poll   time.Duration
	Logger *slog.Logger
	// noInotify forces polling (tests).
	noInotify bool
}

// Watcher watches one directory.
type Watcher struct {
	dir   string
	opts  Options
	log   *slog.Logger
	alive atomic.Int64 // UnixNano of the loop's last turn
}

// New returns a watcher for dir; Run starts it.
func New(dir string, opts Options) *Watcher {
	if opts.Quiet <= 0 {
		opts.Quiet = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 400 * time.Millisecond
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Watcher{dir: dir, opts: opts, log: opts.Logger}
}

// Alive is when the watch loop last turned; it turns at least every
// second while it works, so a stale value means it is stuck.
func (w *Watcher) Alive() time.Time { return time.Unix(0, w.alive.Load()) }

// Relevant reports whether a name in the config directory can change the
// config: a *.toml file, or the "..data" style entries of a Kubernetes
// ConfigMap volume whose swap replaces all files at once. Editors' swap and
// backup files are not.
func Relevant(name string) bool {
	if strings.HasPrefix(name, "..") {
		return true
	}
	return config.IsConfigName(name)
}

// Run watches until ctx ends, calling changed (from Run's goroutine) once
// per burst of relevant changes, and once whenever a watch starts: a change
// made before the watch was in place would otherwise go unnoticed.
func (w *Watcher) Run(ctx context.Context, changed func()) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	w.alive.Store(time.Now().UnixNano())
	for ctx.Err() == nil {
		if !w.opts.noInotify {
			err := w.notify(ctx, tick, changed)
			if err == nil {
				return
			}
			if errors.Is(err, errDirGone) {
				w.log.Warn("the config directory is gone: polling until it is back", "CONFIG_DIR", w.dir)
				w.pollUntilBack(ctx, tick)
				if ctx.Err() == nil {
					w.log.Info("the config directory is back", "CONFIG_DIR", w.dir)
				}
				continue
			}
			w.log.Warn("cannot watch the config directory with inotify: polling it instead",
				"CONFIG_DIR", w.dir, "error", err.Error())
		}
		w.poll(ctx, tick, changed)
	}
}

var errDirGone = errors.New("config directory removed")

// notify is the inotify loop. It returns nil when ctx ends, errDirGone when
// the directory went away, any other error when inotify is unusable.
func (w *Watcher) notify(ctx context.Context, tick *time.Ticker, changed func()) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(w.dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errDirGone
		}
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("inotify watch limit reached (raise fs.inotify.max_user_watches): %w", err)
		}
		return err
	}
	changed()
	var first, last time.Time // the pending burst; zero when none
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		w.alive.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			// The watch on a directory ends silently when the directory is
			// replaced by another of the same name: check it still exists.
			if _, err := os.Stat(w.dir); err != nil {
				return errDirGone
			}
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("inotify closed")
			}
			if ev.Name == w.dir || ev.Name == filepath.Clean(w.dir) {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					return errDirGone
				}
				continue
			}
			if !Relevant(filepath.Base(ev.Name)) {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
			timer.Reset(w.wait(first, last, now))
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("inotify closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: re-read the directory, to be sure.
				first, last = time.Now(), time.Now()
				timer.Reset(w.opts.Quiet)
				continue
			}
			return err
		case <-timer.C:
			now := time.Now()
			if d := w.wait(first, last, now); d > 0 {
				timer.Reset(d)
				continue
			}
			first, last = time.Time{}, time.Time{}
			changed()
		}
	}
}

// wait is how much longer a burst that started at first and last moved at
// last waits before its signal.
func (w *Watcher) wait(first, last, now time.Time) time.Duration {
	d := last.Add(w.opts.Quiet).Sub(now)
	if cap := first.Add(w.opts.MaxDelay).Sub(now); cap < d {
		d = cap
	}
	return max(d, 0)
}

// poll compares the directory's fingerprint every Poll interval. It returns
// after a minute, so that Run tries inotify again.
func (w *Watcher) poll(ctx context.Context, tick *time.Ticker, changed func()) {
	prev := fingerprint(w.dir)
	changed()
	retry := time.Now().Add(time.Minute)
	w.every(ctx, tick, func() bool {
		if fp := fingerprint(w.dir); fp != prev {
			prev = fp
			changed()
		}
		return !w.opts.noInotify && time.Now().After(retry)
	})
}

// pollUntilBack waits for the directory to exist again.
func (w *Watcher) pollUntilBack(ctx context.Context, tick *time.Ticker) {
	w.every(ctx, tick, func() bool {
		fi, err := os.Stat(w.dir)
		return err == nil && fi.IsDir()
	})
}

// every calls done at each Poll interval until it returns true or ctx
// ends, keeping the loop's heartbeat (tick) going meanwhile.
func (w *Watcher) every(ctx context.Context, tick *time.Ticker, done func() bool) {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	for {
		w.alive.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.C:
			if done() {
				return
			}
		}
	}
}

// fingerprint summarizes the relevant entries of dir: names, sizes,
// modification times and symlink targets. Equal fingerprints mean, as far
// as polling can tell, an unchanged config.
func fingerprint(dir string) uint64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if Relevant(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	h := fnv.New64a()
	for _, name := range names {
		p := filepath.Join(dir, name)
		fmt.Fprintf(h, "%s\x00", name)
		if target, err := os.Readlink(p); err == nil {
			fmt.Fprintf(h, "->%s\x00", target)
		}
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(h, "%d %d %o\x00", fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		}
	}
	return h.Sum64() | 1 // never 0, which stands for "unreadable"
}
