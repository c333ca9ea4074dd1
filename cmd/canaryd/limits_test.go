package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

var (
	plainOnce sync.Once
	plainErr  error
)

// plainCanaryd is the name in bin of a canaryd built without the race
// detector, for tests that measure its memory: the race detector's shadow
// memory is several times the program's own.
func plainCanaryd(t *testing.T) string {
	t.Helper()
	if !raceEnabled() {
		return "canaryd"
	}
	plainOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "canaryd-plain"),
			"github.com/canary-pi/canary-pi/cmd/canaryd").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return "canaryd-plain"
}

// peakRSS is the process's peak resident memory, from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestTenThousandHalfOpenConnections: an attacker's 10 000 connections that
// each send half a request head and wait neither keep a well-behaved client
// from its answer nor take canaryd's memory past 64 MiB, with the default
// limits.
func TestTenThousandHalfOpenConnections(t *testing.T) {
	integration(t)
	const attackers = 10_000
	a := newAppliance(t)
	v1 := testkit.StartBackend(t, "v1")
	a.writeConfig(a.config("", upstream{v1, 1, "stable"}))
	p := startProcess(t, plainCanaryd(t), "-config-dir", a.configDir, "-state-dir", a.stateDir, "-gpio", "sim")
	p.waitReady(a.socket)

	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	failed := 0
	for w := range 8 {
		wg.Go(func() {
			for range attackers / 8 {
				c, err := net.DialTimeout("tcp", a.listen, 5*time.Second)
				if err == nil {
					_, err = io.WriteString(c, "GET /"+strconv.Itoa(w)+" HTTP/1.1\r\nHost: x\r\nX-Half: ")
				}
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		t.Logf("%d of %d attacking connections failed to open or write", failed, attackers)
	}

	for i := range 5 {
		start := time.Now()
		c, err := net.DialTimeout("tcp", a.listen, 5*time.Second)
		if err != nil {
			t.Fatalf("a well-behaved client cannot connect: %v", err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("client %d during the attack: %v %v", i+1, resp, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("client %d waited %v for its answer during the attack", i+1, d)
		}
	}
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("canaryd's peak RSS with %d half-open connections: %.1f MiB", len(conns), float64(rss)/(1<<20))
	if rss > 64<<20 {
		t.Errorf("canaryd's peak RSS %.1f MiB, want under 64 MiB", float64(rss)/(1<<20))
	}
}
