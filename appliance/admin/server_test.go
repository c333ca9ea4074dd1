package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/history"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

// onSocket serves ctl over a real unix socket the way canaryd does for
// canaryctl, and returns a client for it.
func onSocket(t *testing.T, ctl admin.Controller) *admin.Client {
	t.Helper()
	return admin.NewClient(admintest.Serve(t, admin.NewHandler(ctl, admin.HandlerOptions{Cause: "command"})))
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func hasKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no key %q; have %v", what, k, keys(m))
		}
	}
}

func TestStatusJSONUsesContractFieldNames(t *testing.T) {
	c := onSocket(t, admintest.NewController(admintest.Canary()))
	body, err := c.Get(context.Background(), "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("status is not a JSON object: %v\n%s", err, body)
	}
	hasKeys(t, "status", got, "state", "canary_version", "canary_percent", "leds", "config", "upstreams")
	if got["state"] != "canary" || got["canary_version"] != "v2" || got["canary_percent"] != 33.3 {
		t.Errorf("state, canary_version, canary_percent = %v, %v, %v; want canary, v2, 33.3",
			got["state"], got["canary_version"], got["canary_percent"])
	}
	leds, _ := got["leds"].(map[string]any)
	hasKeys(t, "leds", leds, "status", "canary")
	config, _ := got["config"].(map[string]any)
	hasKeys(t, "config", config, "generation", "error")
	ups, _ := got["upstreams"].([]any)
	if len(ups) != 2 {
		t.Fatalf("upstreams = %v, want 2 entries", got["upstreams"])
	}
	for _, u := range ups {
		m, _ := u.(map[string]any)
		hasKeys(t, "upstream", m, "name", "role", "url", "weight", "requests", "errors", "healthy")
	}
}

func TestCommandsCallTheController(t *testing.T) {
	tests := []struct {
		name      string
		do        func(*admin.Client, context.Context) (admin.Status, error)
		call      string
		wantState state.Mode
	}{
		{"rollback", (*admin.Client).Rollback, "Rollback(command)", "rolled_back"},
		{"resume", (*admin.Client).Resume, "Resume(command)", "canary"},
		{"promote", (*admin.Client).Promote, "Promote(command)", "promoted"},
		{"reload", (*admin.Client).Reload, "Reload()", "canary"},
		{"button", func(c *admin.Client, ctx context.Context) (admin.Status, error) { return c.Button(ctx, false) }, "Button(short)", "rolled_back"},
		{"button long", func(c *admin.Client, ctx context.Context) (admin.Status, error) { return c.Button(ctx, true) }, "Button(long)", "canary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl := admintest.NewController(admintest.Canary())
			st, err := tt.do(onSocket(t, ctl), context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := ctl.Calls(); !slices.Equal(got, []string{tt.call}) {
				t.Errorf("calls = %q, want [%q]", got, tt.call)
			}
			// The answer is the status after the change, so one request
			// shows its effect.
			if st.State != tt.wantState {
				t.Errorf("returned state = %q, want %q", st.State, tt.wantState)
			}
		})
	}
}

func TestRefusalIsConflictWithTheReason(t *testing.T) {
	ctl := admintest.NewController(admintest.Canary())
	ctl.Refuse("Reload", errors.New("canaryd.toml:4: unknown key \"listn\"\ncanaryd.toml:9: upstream \"w2\": url missing"))
	_, err := onSocket(t, ctl).Reload(context.Background())
	var apiErr *admin.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *admin.Error", err, err)
	}
	if apiErr.StatusCode != http.StatusConflict {
		t.Errorf("status = %d, want 409", apiErr.StatusCode)
	}
	want := `canaryd.toml:4: unknown key "listn"; canaryd.toml:9: upstream "w2": url missing`
	if apiErr.Reason != want {
		t.Errorf("reason = %q, want %q (one line)", apiErr.Reason, want)
	}
	if errors.Is(err, admin.ErrUnreachable) {
		t.Error("a refusal must not look like an unreachable daemon")
	}
}

func TestPauseReachesTheController(t *testing.T) {
	ctl := admintest.NewController(admintest.Canary())
	_, err := onSocket(t, ctl).Pause(context.Background())
	var apiErr *admin.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		t.Errorf("err = %v, want a 409 refusal: canaryd has no progressive rollout to pause", err)
	}
	if got := ctl.Calls(); !slices.Equal(got, []string{"Pause()"}) {
		t.Errorf("calls = %q, want [Pause()]", got)
	}
}

// request sends a request to h as a browser or curl on the TCP listener
// would, and returns the answer's status code and error reason.
func request(t *testing.T, h http.Handler, method, target string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	return requestTo(t, h, method, target, "127.0.0.1:9090", header)
}

// requestTo is request with another Host header.
func requestTo(t *testing.T, h http.Handler, method, target, host string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = host
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var e struct {
		Error string `json:"error"`
	}
	if w.Code != http.StatusOK {
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: %d with Content-Type %q, want application/json", method, target, w.Code, ct)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: %d with body %q, want {\"error\": ...}", method, target, w.Code, w.Body)
		}
	}
	return w.Code, e.Error, w.Header()
}

func TestTokenGuardsChangesOnTCP(t *testing.T) {
	tests := []struct {
		name       string
		publicRead bool
		method     string
		target     string
		auth       string
		want       int
		calls      []string
	}{
		{"status open with public_read", true, "GET", "/v1/status", "", 200, nil},
		{"incidents open with public_read", true, "GET", "/v1/incidents", "", 200, nil},
		{"changes still need it with public_read", true, "POST", "/v1/rollback", "", 401, nil},
		{"status needs it without public_read", false, "GET", "/v1/status", "", 401, nil},
		{"status HEAD needs it without public_read", false, "HEAD", "/v1/status", "", 401, nil},
		{"history needs it without public_read", false, "GET", "/v1/history", "", 401, nil},
		{"incidents need it without public_read", false, "GET", "/v1/incidents", "", 401, nil},
		{"an incident needs it without public_read", false, "GET", "/v1/incidents/x?format=csv", "Bearer wrong", 401, nil},
		{"status with the token", false, "GET", "/v1/status", "Bearer s3cret", 200, nil},
		{"no token", false, "POST", "/v1/rollback", "", 401, nil},
		{"wrong token", false, "POST", "/v1/rollback", "Bearer wrong", 401, nil},
		{"token without Bearer", false, "POST", "/v1/rollback", "s3cret", 401, nil},
		{"a longer token", false, "POST", "/v1/rollback", "Bearer s3cretx", 401, nil},
		{"button without token", false, "POST", "/v1/button?long=1", "", 401, nil},
		{"right token", false, "POST", "/v1/rollback", "Bearer s3cret", 200, []string{"Rollback(api)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl := admintest.NewController(admintest.Canary())
			h := admin.NewHandler(ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret", PublicRead: tt.publicRead})
			code, _, hdr := request(t, h, tt.method, tt.target, map[string]string{"Authorization": tt.auth})
			if code != tt.want {
				t.Errorf("status = %d, want %d", code, tt.want)
			}
			if code == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
			if got := ctl.Calls(); !slices.Equal(got, tt.calls) {
				t.Errorf("calls = %q, want %q", got, tt.calls)
			}
		})
	}
}

// TestTheShellOfThePageLoadsWithoutTheToken: a route mounted with
// HandleOpen answers without the token, so the page can ask for it.
func TestTheShellOfThePageLoadsWithoutTheToken(t *testing.T) {
	h := admin.NewHandler(admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api", Token: "s3cret"})
	h.HandleOpen("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>") }))
	h.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") })
	if code, _, _ := request(t, h, "GET", "/", nil); code != 200 {
		t.Errorf("GET / = %d, want 200", code)
	}
	if code, _, _ := request(t, h, "GET", "/metrics", nil); code != 401 {
		t.Errorf("GET /metrics = %d, want 401", code)
	}
	if code, _, _ := request(t, h, "GET", "/metrics", map[string]string{"Authorization": "Bearer s3cret"}); code != 200 {
		t.Errorf("GET /metrics with the token = %d, want 200", code)
	}
}

// TestTheSocketNeedsNoToken: the unix socket's handler has no token and no
// host names; its file mode guards it.
func TestTheSocketNeedsNoToken(t *testing.T) {
	c := onSocket(t, admintest.NewController(admintest.Canary()))
	if _, err := c.Get(context.Background(), "/v1/status"); err != nil {
		t.Errorf("status over the socket: %v", err)
	}
	if _, err := c.Rollback(context.Background()); err != nil {
		t.Errorf("rollback over the socket: %v", err)
	}
}

func TestCrossOriginChangesAreForbidden(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no browser headers (curl, canaryctl)", nil, 200},
		{"same origin", map[string]string{"Origin": "http://127.0.0.1:9090"}, 200},
		{"same origin by fetch metadata", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"other origin", map[string]string{"Origin": "http://evil.example"}, 403},
		{"other port on the same host", map[string]string{"Origin": "http://127.0.0.1:8080"}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl := admintest.NewController(admintest.Canary())
			h := admin.NewHandler(ctl, admin.HandlerOptions{Cause: "api"})
			code, _, _ := request(t, h, "POST", "/v1/rollback", tt.header)
			if code != tt.want {
				t.Errorf("status = %d, want %d", code, tt.want)
			}
			if code != 200 && len(ctl.Calls()) != 0 {
				t.Errorf("refused request still called %q", ctl.Calls())
			}
		})
	}
}

func TestWrongMethodOrPath(t *testing.T) {
	tests := []struct {
		method, target string
		want           int
		allow          string
	}{
		{"GET", "/v1/rollback", 405, "POST"},
		{"POST", "/v1/status", 405, "GET, HEAD"},
		{"DELETE", "/v1/promote", 405, "POST"},
		{"GET", "/v1/nope", 404, ""},
		{"POST", "/v1/nope", 404, ""},
		{"GET", "/", 404, ""},
		{"POST", "/v1/button?long=maybe", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			ctl := admintest.NewController(admintest.Canary())
			h := admin.NewHandler(ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret"})
			code, _, hdr := request(t, h, tt.method, tt.target, map[string]string{"Authorization": "Bearer s3cret"})
			if code != tt.want {
				t.Errorf("status = %d, want %d", code, tt.want)
			}
			if got := hdr.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if len(ctl.Calls()) != 0 {
				t.Errorf("calls = %q, want none", ctl.Calls())
			}
		})
	}
}

func TestMountedRoutesShareTheGuards(t *testing.T) {
	h := admin.NewHandler(admintest.NewController(admintest.Canary()), admin.HandlerOptions{Cause: "api", Token: "s3cret", PublicRead: true})
	h.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") })
	reached := false
	h.HandleFunc("POST /v1/extra", func(http.ResponseWriter, *http.Request) { reached = true })

	if code, _, _ := request(t, h, "GET", "/metrics", nil); code != 200 {
		t.Errorf("GET /metrics = %d, want 200", code)
	}
	if code, _, _ := request(t, h, "POST", "/v1/extra", nil); code != 401 || reached {
		t.Errorf("POST /v1/extra without token = %d (reached %v), want 401 and not reached", code, reached)
	}
	if code, _, _ := request(t, h, "POST", "/v1/extra", map[string]string{"Authorization": "Bearer s3cret"}); code != 200 || !reached {
		t.Errorf("POST /v1/extra with token = %d (reached %v), want 200 and reached", code, reached)
	}
}

// TestStatusJSONValuesAreTheTypesText: the typed fields of the status
// (mode, LEDs, verdict, latch cause) are written as the contract spells
// them, and a client reads them back into the same values.
func TestStatusJSONValuesAreTheTypesText(t *testing.T) {
	st := admin.Status{
		State:   state.RolledBack,
		LEDs:    admin.LEDs{Status: led.GreenBlink, Canary: led.RedBlink},
		Latch:   &admin.Latch{State: state.RolledBack, Version: "v2", Cause: state.CauseButton},
		Verdict: &admin.Verdict{State: analysis.NotEnough},
	}
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"state":"rolled_back"`,
		`"leds":{"status":"green-blink","canary":"red-blink"}`,
		`"latch":{"state":"rolled_back","version":"v2","cause":"button"`,
		`"verdict":{"state":"not_enough_traffic"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("status JSON lacks %s:\n%s", want, body)
		}
	}
	var back admin.Status
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatal(err)
	}
	if back.State != st.State || back.LEDs != st.LEDs || *back.Latch != *st.Latch || back.Verdict.State != st.Verdict.State {
		t.Errorf("read back %+v, want %+v", back, st)
	}
}

func TestHistoryIsServedBesideTheStatus(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h := history.New()
	h.Record(t0, history.Totals{Requests: 10, Errors: 2, P99: 40 * time.Millisecond}, history.Totals{Requests: 90}, history.Evidence{})
	h.Mark(t0.Add(time.Second), history.Rollback, 0, "rolled back by the button")
	ctl := admintest.NewController(admintest.Canary())
	ctl.SetHistory(h.Snapshot(t0.Add(history.Interval)))
	srv := httptest.NewServer(admin.NewHandler(ctl, admin.HandlerOptions{Cause: "api", Token: "s3cret", PublicRead: true}))
	t.Cleanup(srv.Close)

	// With public_read, reading needs no token, as the status does.
	res, err := http.Get(srv.URL + "/v1/history")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /v1/history: %s, Content-Type %q, Cache-Control %q", res.Status, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	var got history.Snapshot
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("history is not JSON: %v\n%s", err, body)
	}
	if got.IntervalS != 5 || len(got.Samples) != 1 || got.Samples[0].Canary.Errors != 2 || got.Samples[0].Canary.P99Ms != 40 ||
		len(got.Marks) != 1 || got.Marks[0].Kind != history.Rollback {
		t.Errorf("history %+v", got)
	}
	if strings.Count(string(body), "\n") != 1 {
		t.Errorf("history is not compact JSON on one line:\n%s", body)
	}
	if calls := ctl.Calls(); len(calls) != 0 {
		t.Errorf("reading the history changed something: %q", calls)
	}

	// A fresh fake, as a fresh daemon, has empty lists, not nulls.
	c := onSocket(t, admintest.NewController(admintest.Canary()))
	empty, err := c.Get(context.Background(), "/v1/history")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(empty), `"samples":[]`) || !strings.Contains(string(empty), `"marks":[]`) {
		t.Errorf("an empty history: %s", empty)
	}
}
