package testkit_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

func TestBackendAnswersItsNameAndCountsHits(t *testing.T) {
	b := testkit.StartBackend(t, "v1")
	for range 3 {
		if resp, body := testkit.Get(t, "http://"+b.Addr()+"/"); resp.StatusCode != http.StatusOK || string(body) != "v1" {
			t.Fatalf("GET: %s %q, want 200 v1", resp.Status, body)
		}
	}
	if b.Hits() != 3 {
		t.Errorf("Hits = %d, want 3", b.Hits())
	}
	if b.Conns() != 1 {
		t.Errorf("Conns = %d after three keep-alive requests, want 1", b.Conns())
	}
}

func TestBackendFailsWithItsStatus(t *testing.T) {
	b := testkit.StartBackend(t, "v2", testkit.Status(http.StatusInternalServerError))
	if resp, body := testkit.Get(t, b.URL); resp.StatusCode != http.StatusInternalServerError || string(body) != "v2" {
		t.Errorf("GET: %s %q, want 500 v2", resp.Status, body)
	}
}

func TestBackendSaysStartedBeforeItsDelay(t *testing.T) {
	started := make(chan struct{}, 1)
	b := testkit.StartBackend(t, "slow", testkit.Delay(200*time.Millisecond), testkit.Started(started))
	begin := time.Now()
	done := make(chan struct{})
	go func() { http.Get(b.URL); close(done) }()
	<-started
	select {
	case <-done:
		t.Fatal("the answer came with the start, before the delay")
	default:
	}
	<-done
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("answered after %v, want the 200ms delay", d)
	}
}

func TestSocketDirIsShortAndGoesAway(t *testing.T) {
	var dir string
	t.Run("test", func(t *testing.T) {
		dir = testkit.SocketDir(t)
		if len(filepath.Join(dir, "admin.sock")) > 100 {
			t.Errorf("socket path %q is too long for a unix socket", dir)
		}
		ln, err := net.Listen("unix", filepath.Join(dir, "admin.sock"))
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after the test: %v", dir, err)
	}
}

func TestFreeAddrRefusesConnections(t *testing.T) {
	if c, err := net.Dial("tcp", testkit.FreeAddr(t)); err == nil {
		c.Close()
		t.Fatal("connected to a free address")
	}
}

func TestWithinReportsWhetherTheConditionHeld(t *testing.T) {
	n := 0
	if !testkit.Within(time.Second, func() bool { n++; return n == 3 }) {
		t.Error("Within gave up on a condition that held on the third poll")
	}
	if testkit.Within(20*time.Millisecond, func() bool { return false }) {
		t.Error("Within reported a condition that never held")
	}
}
