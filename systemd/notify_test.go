package systemd

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// fakeSystemd listens where $NOTIFY_SOCKET points and returns what arrives.
func fakeSystemd(t *testing.T) <-chan string {
	t.Helper()
	path, msgs := testkit.Datagrams(t)
	t.Setenv("NOTIFY_SOCKET", path)
	return msgs
}

func drain(msgs <-chan string, within time.Duration) []string {
	var got []string
	deadline := time.After(within)
	for {
		select {
		case m := <-msgs:
			got = append(got, m)
		case <-deadline:
			return got
		}
	}
}

func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	msgs := fakeSystemd(t)
	var healthy atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go WatchdogEvery(ctx, 20*time.Millisecond, func() error {
		if healthy.Load() {
			return nil
		}
		return errors.New("proxy probe: no answer")
	}, slog.New(slog.DiscardHandler))

	if got := drain(msgs, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("pinged while unhealthy: %q", got)
	}
	healthy.Store(true)
	got := drain(msgs, 300*time.Millisecond)
	if len(got) == 0 {
		t.Fatal("no ping while healthy")
	}
	for _, m := range got {
		if m != "WATCHDOG=1" {
			t.Fatalf("unexpected message %q", m)
		}
	}
}

func TestNotifierMessages(t *testing.T) {
	msgs := fakeSystemd(t)
	var n Notifier
	n.Ready()
	n.Status("canary v2 33% healthy · 0 req/min")
	n.Status("canary v2 33% healthy · 0 req/min") // unchanged: not sent again
	n.Reloading()
	n.Stopping()
	got := drain(msgs, 200*time.Millisecond)
	if len(got) != 4 {
		t.Fatalf("messages %q", got)
	}
	if got[0] != "READY=1" || got[1] != "STATUS=canary v2 33% healthy · 0 req/min" ||
		!strings.HasPrefix(got[2], "RELOADING=1\nMONOTONIC_USEC=") || got[3] != "STOPPING=1" {
		t.Fatalf("messages %q", got)
	}
}
