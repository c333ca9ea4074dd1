package admin_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/incident"
)

var (
	firstRollback  = time.Date(2026, 12, 1, 10, 15, 0, 0, time.UTC)
	secondRollback = time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
)

// incidentServer serves a fake with two reports on TCP with a token and
// public_read, as the status page reaches canaryd.
func incidentServer(t *testing.T) string {
	t.Helper()
	ctl := admintest.NewController(admintest.Canary())
	ctl.SetIncidents(admintest.Report("v2", firstRollback), admintest.Report("v3", secondRollback))
	srv := httptest.NewServer(admin.NewHandler(ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret", PublicRead: true}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// get fetches url without a token: with public_read, reading incidents needs none.
func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestIncidentListHasTheContractFieldsNewestFirst(t *testing.T) {
	res, body := get(t, incidentServer(t)+"/v1/incidents")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/incidents: %s %s\n%s", res.Status, res.Header.Get("Content-Type"), body)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("list %v, %v:\n%s", list, err, body)
	}
	for _, in := range list {
		hasKeys(t, "incident summary", in, "id", "cause", "version", "started", "rolled_back", "requests", "users")
	}
	if list[0]["id"] != "20261201T110000Z-v3" || list[1]["id"] != "20261201T101500Z-v2" {
		t.Errorf("ids %v, %v; want the newest first", list[0]["id"], list[1]["id"])
	}
	if list[1]["rolled_back"] != "2026-12-01T10:15:00Z" || list[1]["started"] != "2026-12-01T10:00:00Z" ||
		list[1]["cause"] != "button" || list[1]["requests"] != 2.0 || list[1]["users"] != 2.0 {
		t.Errorf("summary %v", list[1])
	}
}

func TestNoIncidentsIsAnEmptyArray(t *testing.T) {
	srv := httptest.NewServer(admin.NewHandler(admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api"}))
	t.Cleanup(srv.Close)
	if res, body := get(t, srv.URL+"/v1/incidents"); res.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /v1/incidents with none: %s %q, want 200 []", res.Status, body)
	}
}

func TestIncidentJSONListsTheWritesWithTheContractFields(t *testing.T) {
	res, body := get(t, incidentServer(t)+"/v1/incidents/20261201T101500Z-v2")
	if res.StatusCode != 200 {
		t.Fatalf("%s\n%s", res.Status, body)
	}
	var got struct {
		Requests []map[string]any `json:"requests"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Requests) != 2 {
		t.Fatalf("requests %v, %v", got.Requests, err)
	}
	for _, q := range got.Requests {
		hasKeys(t, "request", q, "request_id", "method", "path", "status", "time")
	}
	if q := got.Requests[1]; q["request_id"] != "r-3" || q["method"] != "PUT" || q["path"] != "/orders/7" || q["status"] != 502.0 {
		t.Errorf("second request %v", q)
	}
}

func TestIncidentFormats(t *testing.T) {
	tests := []struct {
		query, contentType, starts string
	}{
		{"", "application/json", "{"},
		{"?format=json", "application/json", "{"},
		{"?format=csv", "text/csv; charset=utf-8", "time,request_id,method,path,status,bytes_in,bytes_out,duration_ms,upstream,user\n"},
		{"?format=text", "text/plain; charset=utf-8", "incident  20261201T101500Z-v2\n"},
	}
	url := incidentServer(t)
	for _, tt := range tests {
		res, body := get(t, url+"/v1/incidents/20261201T101500Z-v2"+tt.query)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tt.contentType || !strings.HasPrefix(body, tt.starts) {
			t.Errorf("%q: %s, %s, body starting %.60q; want 200, %s, %q", tt.query, res.Status, res.Header.Get("Content-Type"), body, tt.contentType, tt.starts)
		}
		if tt.query == "?format=csv" {
			rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
			if err != nil || len(rows) != 3 || rows[1][1] != "r-2" || rows[2][1] != "r-3" {
				t.Errorf("CSV rows %v, %v", rows, err)
			}
		}
		if tt.query == "?format=text" && res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Error("text answer without nosniff: a browser may guess it is HTML")
		}
	}
}

func TestIncidentErrorsAreOneLineJSON(t *testing.T) {
	tests := []struct {
		name, target string
		want         int
		reason       string
	}{
		{"unknown id", "/v1/incidents/20261201T101500Z-v9", 404, `no such incident: "20261201T101500Z-v9"`},
		{"unknown format", "/v1/incidents/20261201T101500Z-v2?format=xml", 400, `format="xml": want json, csv or text`},
	}
	url := incidentServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, url+tt.target)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || res.StatusCode != tt.want || !strings.HasPrefix(e.Error, tt.reason) || strings.Contains(e.Error, "\n") {
				t.Errorf("%s: %s %q; want %d and a line starting %q", tt.target, res.Status, body, tt.want, tt.reason)
			}
		})
	}
}

// olderController is a daemon's controller without incident reports.
type olderController struct{ admin.Controller }

func TestADaemonWithoutIncidentReportsSaysSo(t *testing.T) {
	srv := httptest.NewServer(admin.NewHandler(olderController{admintest.NewController(admintest.Canary())}, admin.HandlerOptions{Cause: "api"}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/v1/incidents", "/v1/incidents/20261201T101500Z-v2"} {
		res, body := get(t, srv.URL+path)
		if res.StatusCode != 404 || !strings.Contains(body, "incidents are not recorded by this canaryd yet") {
			t.Errorf("%s: %s %q", path, res.Status, body)
		}
	}
}

// storeController serves the reports of a real store, as canaryd does.
type storeController struct {
	admin.Controller
	s *incident.Store
}

func (c storeController) Incidents() ([]incident.Summary, error)      { return c.s.List() }
func (c storeController) Incident(id string) (incident.Report, error) { return c.s.Get(id) }

func TestIncidentsFromTheStoreSurviveATornFileAndRefuseAPathAsID(t *testing.T) {
	s, err := incident.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(admintest.Report("v2", firstRollback), 100, 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "20261201T120000Z-v4.json"), []byte(`{"id": "2026`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(admin.NewHandler(storeController{admintest.NewController(admintest.Canary()), s}, admin.HandlerOptions{Cause: "api"}))
	t.Cleanup(srv.Close)
	if res, body := get(t, srv.URL+"/v1/incidents"); res.StatusCode != 200 || !strings.Contains(body, "20261201T101500Z-v2") || strings.Contains(body, "v4") {
		t.Errorf("list beside a torn file: %s\n%s", res.Status, body)
	}
	for _, target := range []string{"/v1/incidents/..%2Flatch", "/v1/incidents/.hidden"} {
		if res, body := get(t, srv.URL+target); res.StatusCode != 400 || !strings.Contains(body, "invalid incident id") {
			t.Errorf("%s: %s %q; want 400 and the reason", target, res.Status, body)
		}
	}
}
