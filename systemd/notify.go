// Package systemd is canaryd's side of the service manager: readiness,
// status and watchdog notifications over $NOTIFY_SOCKET, and structured
// logs to journald. Outside systemd every call is a no-op and logs go to
// stderr as text. Socket activation is not here: cmd/canaryd takes the
// inherited listener from go-systemd's activation package itself.
package systemd

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify messages. The zero value is ready to use; it
// does nothing when $NOTIFY_SOCKET is not set.
type Notifier struct {
	mu     sync.Mutex
	status string
}

func (n *Notifier) send(state string) {
	daemon.SdNotify(false, state)
}

// Ready says the service is up and serving.
func (n *Notifier) Ready() { n.send(daemon.SdNotifyReady) }

// Reloading says a reload started; call Ready when it ends.
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping() { n.send(daemon.SdNotifyStopping) }

// Status sets the one-line status `systemctl status` shows. Repeating the
// same line sends nothing.
func (n *Notifier) Status(line string) {
	line = strings.ReplaceAll(line, "\n", " ")
	n.mu.Lock()
	same := line == n.status
	n.status = line
	n.mu.Unlock()
	if !same {
		n.send("STATUS=" + line)
	}
}

// Watchdog pings systemd's watchdog at half of WatchdogSec for as long as
// healthy says the service works, until ctx ends. A failed check skips the
// ping (and logs why): if the service stays unhealthy, systemd restarts it.
// Without a watchdog it returns at once.
func Watchdog(ctx context.Context, healthy func() error, log *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	WatchdogEvery(ctx, interval/2, healthy, log)
}

// WatchdogEvery is Watchdog with an explicit ping interval.
func WatchdogEvery(ctx context.Context, every time.Duration, healthy func() error, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	var failing string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := healthy(); err != nil {
			if msg := err.Error(); msg != failing {
				log.Error("health check failed: withholding the watchdog ping", "error", msg)
				failing = msg
			}
			continue
		}
		if failing != "" {
			log.Info("health check passes again")
			failing = ""
		}
		daemon.SdNotify(false, daemon.SdNotifyWatchdog)
	}
}
