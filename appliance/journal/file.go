package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileName is the journal's file in its directory; the one before it, after
// a rotation, has ".1" appended.
const FileName = "canary.jsonl"

// File copies a journal's records to a file of JSON lines, in batches: an
// SD card wears out under one write per request, so records reach the disk
// once a second at most, in one write, and a request never waits for it.
// Past its size limit the file is rotated, and one old file is kept.
type File struct {
	j   *Journal
	dir string

	mu       sync.Mutex
	on       bool
	maxBytes int64
	last     uint64 // the newest record written
	f        *os.File
	size     int64
}

// NewFile returns the writer of j's records into dir (journal/ in the
// state directory); it writes nothing until Configure turns it on.
func NewFile(j *Journal, dir string) *File {
	return &File{j: j, dir: dir}
}

// Path is the file records are written to.
func (w *File) Path() string { return filepath.Join(w.dir, FileName) }

// Configure applies journal.file and journal.file_max_bytes. Turned on, the
// file gets the records that arrive from now on; turned off, it is closed
// and kept.
func (w *File) Configure(on bool, maxBytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on && !w.on {
		w.last = w.j.Seq()
	}
	if !on && w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.on, w.maxBytes = on, int64(maxBytes)
}

// Flush writes the records that arrived since the last flush. A record the
// ring overwrote before it was written is counted in one "lost" line.
func (w *File) Flush(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.on {
		return nil
	}
	records, lost := w.j.After(w.last, nil)
	if len(records) == 0 && lost == 0 {
		return nil
	}
	var buf []byte
	if lost > 0 {
		buf = fmt.Appendf(buf, `{"time":%q,"lost":%d}`+"\n", now.UTC().Format(time.RFC3339Nano), lost)
	}
	for i := range records {
		line, err := json.Marshal(&records[i])
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	if err := w.open(int64(len(buf))); err != nil {
		return err
	}
	n, err := w.f.Write(buf)
	w.size += int64(n)
	if len(records) > 0 {
		w.last = records[len(records)-1].Seq
	}
	if err != nil {
		return fmt.Errorf("journal file %s: %w", w.Path(), err)
	}
	return nil
}

// open makes w.f the file to append next bytes to, rotating it first when
// they would take it past the limit; w.mu is held.
func (w *File) open(next int64) error {
	if w.f != nil && w.size > 0 && w.size+next > w.maxBytes {
		w.f.Close()
		w.f = nil
		if err := os.Rename(w.Path(), w.Path()+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal file: rotating: %w", err)
		}
	}
	if w.f != nil {
		return nil
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return fmt.Errorf("journal file: %w", err)
	}
	f, err := os.OpenFile(w.Path(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("journal file: %w", err)
	}
	w.f, w.size = f, st.Size()
	if w.size > 0 && w.size+next > w.maxBytes {
		return w.open(next) // a file left this large by a previous run
	}
	return nil
}

// Close flushes what is left and closes the file.
func (w *File) Close(now time.Time) error {
	err := w.Flush(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
	}
	return err
}

// Run flushes the journal's new records to the file once a second, while
// the file is on, until ctx ends; log gets one entry when writing starts
// to fail and one when it works again.
func (w *File) Run(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			err := w.Flush(now)
			if (err != nil) == failing {
				continue
			}
			if failing = err != nil; failing {
				log.Error("cannot write the journal file", "PATH", w.Path(), "error", err.Error())
			} else {
				log.Info("the journal file is written again", "PATH", w.Path())
			}
		}
	}
}
