package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// notifySocket is a fake systemd: a datagram socket that collects what
// canaryd sends to $NOTIFY_SOCKET.
type notifySocket struct {
	path string
	msgs <-chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path, msgs := testkit.Datagrams(t)
	return &notifySocket{path: path, msgs: msgs}
}

// expect waits for a message that contains want, skipping others, and
// returns the messages it skipped.
func (n *notifySocket) expect(t *testing.T, want string, within time.Duration) []string {
	t.Helper()
	var skipped []string
	deadline := time.After(within)
	for {
		select {
		case m := <-n.msgs:
			if strings.Contains(m, want) {
				return skipped
			}
			skipped = append(skipped, m)
		case <-deadline:
			t.Fatalf("no %q within %s; got %q", want, within, skipped)
		}
	}
}

func TestSystemdNotifications(t *testing.T) {
	integration(t)
	notify := listenNotify(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	p := startProcessEnv(t, []string{"NOTIFY_SOCKET=" + notify.path, "WATCHDOG_USEC=1000000"},
		"canaryd", "-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim")

	notify.expect(t, "READY=1", 20*time.Second)
	notify.expect(t, "STATUS=canary v2 33%", 10*time.Second)

	// WatchdogSec=1s: a ping every half second, and only pings while idle.
	var pings int
	window := time.After(3 * time.Second)
collect:
	for {
		select {
		case m := <-notify.msgs:
			if m == "WATCHDOG=1" {
				pings++
			}
		case <-window:
			break collect
		}
	}
	if pings < 3 || pings > 8 { // 6 on an idle machine
		t.Errorf("%d watchdog pings in 3 s with WATCHDOG_USEC=1s, want about 6", pings)
	}

	a.writeConfig(a.config("v2", upstream{v1, 1, "stable"}, upstream{v2, 1, "canary"}))
	notify.expect(t, "RELOADING=1\nMONOTONIC_USEC=", 5*time.Second)
	notify.expect(t, "READY=1", 5*time.Second)

	p.signal(syscall.SIGTERM)
	notify.expect(t, "STOPPING=1", 10*time.Second)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
}

// loadClient keeps requests going to the proxy until stop is closed, and
// counts what the clients saw.
type loadClient struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
}

func (l *loadClient) run(addr string, workers int, stop <-chan struct{}, maxRequests int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for sent.Add(1) <= maxRequests {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://" + addr + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.failures) < 5 {
						l.failures = append(l.failures, fmt.Sprint(err, resp))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return &wg
}

func TestConfigRewritesUnderLoadLoseNoRequest(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	a.writeConfig(a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"}))
	p := a.start()

	load := &loadClient{}
	stop := make(chan struct{})
	wg := load.run(a.listen, 8, stop, 200000)

	var delays []time.Duration
	for i := range 40 {
		weight := 1 + i%5
		text := a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, weight, "canary"})
		before := getStatus(t, a.socket).Config.Generation
		start := time.Now()
		if i%2 == 0 {
			writeInPlace(t, filepath.Join(a.configDir, "canaryd.toml"), text)
		} else {
			a.writeConfig(text)
		}
		// Live means: applied, with the new weight in the status.
		for {
			st := getStatus(t, a.socket)
			if st.Config.Generation > before && st.Upstreams[1].Weight == weight {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("rewrite %d not applied after 5 s (generation %d)", i, st.Config.Generation)
			}
			time.Sleep(10 * time.Millisecond)
		}
		delays = append(delays, time.Since(start))
	}
	close(stop)
	wg.Wait()

	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("%d requests during 40 rewrites; apply delay median %s, max %s",
		load.ok.Load(), delays[len(delays)/2], delays[len(delays)-1])
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during rewrites, e.g. %v", n, load.failures)
	}
	if load.ok.Load() == 0 {
		t.Error("no request succeeded")
	}
	if median := delays[len(delays)/2]; median > time.Second {
		t.Errorf("median apply delay %s, want within a second", median)
	}
	p.stop()
}

// writeInPlace rewrites path in place (truncate and write), as `echo >`
// and some editors do.
func writeInPlace(t *testing.T, path, text string) {
	t.Helper()
	f, err := openTrunc(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, text); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func openTrunc(path string) (io.WriteCloser, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
}

// TestARestartOnlyChangeShowsUntilTheRestart: a changed proxy.listen is
// applied by no reload; the status, canaryctl status and the journal say
// it waits for a restart, until it is changed back or canaryd restarts.
// The status also tells the share the canary served from the share it is
// meant to get.
func TestARestartOnlyChangeShowsUntilTheRestart(t *testing.T) {
	integration(t)
	a := newAppliance(t)
	v1, v2 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2")
	cfg := a.config("v2", upstream{v1, 10, "stable"}, upstream{v2, 5, "canary"})
	a.writeConfig(cfg)
	p := a.start()
	statuses(t, a.listen, 30)
	if st := getStatus(t, a.socket); st.CanaryServed == nil || *st.CanaryServed != 33.3 || st.Pending != nil {
		t.Errorf("after 30 requests at 10:5: served %v, pending %v; want 33.3 and nothing pending", st.CanaryServed, st.Pending)
	}

	moved := strings.Replace(cfg, a.listen, testkit.FreeAddr(t), 1)
	a.writeConfig(moved)
	if r := canaryctl(t, a.socket, "reload"); r.code != 0 {
		t.Fatalf("reload: exit %d, %s", r.code, r.stderr)
	}
	if st := getStatus(t, a.socket); !slices.Equal(st.Pending, []string{"proxy.listen"}) {
		t.Errorf("after moving proxy.listen: pending %v, want [proxy.listen]", st.Pending)
	}
	if r := canaryctl(t, a.socket, "status"); !strings.Contains(r.stdout, "proxy.listen changed: waits for a restart") {
		t.Errorf("canaryctl status does not say the restart is pending:\n%s", r.stdout)
	}
	if !strings.Contains(p.stderr.String(), "proxy.listen changed: restart canaryd to apply it") {
		t.Errorf("the journal does not say proxy.listen waits for a restart:\n%s", p.stderr.String())
	}
	statuses(t, a.listen, 3) // still served where it was

	a.writeConfig(cfg)
	if r := canaryctl(t, a.socket, "reload"); r.code != 0 {
		t.Fatalf("reload: exit %d, %s", r.code, r.stderr)
	}
	if st := getStatus(t, a.socket); st.Pending != nil {
		t.Errorf("after moving proxy.listen back: pending %v, want nothing", st.Pending)
	}
	p.stop()
}
