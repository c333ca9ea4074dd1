package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRiseAndFall(t *testing.T) {
	var c Check
	steps := []struct {
		pass  bool
		up    bool
		moved bool
	}{
		{true, false, false}, // one pass: still out
		{false, false, false},
		{true, false, false},
		{true, true, true}, // two in a row: in
		{false, true, false},
		{false, true, false},
		{true, true, false}, // a pass resets the failures
		{false, true, false},
		{false, true, false},
		{false, false, true}, // three in a row: out
	}
	for i, s := range steps {
		var moved bool
		c, moved = c.Observe(s.pass)
		if c.Up != s.up || moved != s.moved {
			t.Fatalf("probe %d (pass %v): up %v, moved %v; want %v, %v", i+1, s.pass, c.Up, moved, s.up, s.moved)
		}
	}
}

func TestRunReportsAnUpstreamThatComesAndGoes(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan bool, 4)
	go Run(ctx, srv.Client(), srv.URL+"/healthz", 10*time.Millisecond, func(up bool, err error) { changes <- up })

	select {
	case up := <-changes:
		t.Fatalf("a failing upstream was reported up=%v", up)
	case <-time.After(100 * time.Millisecond):
	}
	status.Store(http.StatusOK)
	if up := wait(t, changes); !up {
		t.Fatal("a passing upstream was not reported up")
	}
	srv.CloseClientConnections()
	status.Store(http.StatusInternalServerError)
	if up := wait(t, changes); up {
		t.Fatal("a failing upstream was not reported down")
	}
}

func wait(t *testing.T, changes <-chan bool) bool {
	t.Helper()
	select {
	case up := <-changes:
		return up
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10 s")
		return false
	}
}
