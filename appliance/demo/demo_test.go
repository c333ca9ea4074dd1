package demo

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
)

func TestBackendAnswersAsTheSeedsGinService(t *testing.T) {
	srv := NewServer("pong-v1")
	tests := []struct {
		path string
		code int
	}{
		{"/ping", 200},
		{"/", 200},
		{"/status/503", 503},
		{"/status/201", 201},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.code || rec.Body.String() != `{"message":"pong-v1"}` ||
			rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("GET %s: %d %q %q; want %d {\"message\":\"pong-v1\"} as JSON", tt.path,
				rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.code)
		}
	}
	for _, path := range []string{"/status/abc", "/status/99", "/status/600"} {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, rec.Code)
		}
	}
}

func TestDefaultListenIsWhereTheExampleConfigPoints(t *testing.T) {
	cfg, err := config.Load("../../packaging")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{}
	for _, u := range cfg.Upstreams {
		hosts[u.URL.Host] = true
	}
	for _, b := range Backends {
		if got := DefaultListen(b.Name); !hosts[got] {
			t.Errorf("DefaultListen(%q) = %q: no upstream of the example config is there", b.Name, got)
		}
	}
	if got := DefaultListen("mine"); got != "" {
		t.Errorf("DefaultListen of a name of one's own = %q, want \"\" (it needs -listen)", got)
	}
}
