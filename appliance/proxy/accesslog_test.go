package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// accessEntries are the access log's entries in a JSON log, by request id.
func accessEntries(log *testkit.SyncBuffer) map[string]map[string]any {
	entries := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["REQUEST_ID"] != nil {
			entries[e["REQUEST_ID"].(string)] = e
		}
	}
	return entries
}

// TestTheAccessLogIsNginxsCombinedFormat: each entry's message is the
// request in nginx's combined format (no query string), written when the
// response is through: its size is the whole body's, streamed or not, and
// canaryd's own answers are logged too. The request id and the upstream
// are fields beside it; quotes and control bytes cannot forge a line.
func TestTheAccessLogIsNginxsCombinedFormat(t *testing.T) {
	big := strings.Repeat("x", 200_000)
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"message":"pong"}`) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(big); i += 50_000 {
			io.WriteString(w, big[i:i+50_000])
			w.(http.Flusher).Flush() // chunked, streamed through
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	log := &testkit.SyncBuffer{}
	opts := defaults
	opts.Logger = slog.New(slog.NewJSONHandler(log, nil))
	r := startProxy(t, opts, stable("w1", 1, ln.Addr().String()))
	r.proxy.SetAccessLog(true)

	c := newClient(t)
	send := func(path, id string, h map[string]string) {
		t.Helper()
		req, _ := http.NewRequest("GET", r.url(path), nil)
		req.Header.Set("X-Request-Id", id)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	send("/ping?token=secret", "req-ping", map[string]string{"Referer": "http://shop.example/cart", "User-Agent": `curl/8.5 "quoted"`, "Authorization": "Basic YWxpY2U6cHc="})
	send("/big", "req-big", nil)

	var entries map[string]map[string]any
	testkit.Eventually(t, 5*time.Second, "two access log entries", func() bool {
		entries = accessEntries(log)
		return len(entries) == 2
	})
	combined := regexp.MustCompile(`^127\.0\.0\.1 - (\S+) \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "([^"]*)" (\d{3}) (\d+) "((?:[^"\\]|\\x[0-9A-F]{2})*)" "((?:[^"\\]|\\x[0-9A-F]{2})*)"$`)
	for id, want := range map[string][]string{
		"req-ping": {"alice", "GET /ping HTTP/1.1", "200", strconv.Itoa(len(`{"message":"pong"}`)), "http://shop.example/cart", `curl/8.5 \x22quoted\x22`},
		"req-big":  {"-", "GET /big HTTP/1.1", "200", strconv.Itoa(len(big)), "-", "Go-http-client/1.1"},
	} {
		e := entries[id]
		msg, _ := e["msg"].(string)
		m := combined.FindStringSubmatch(msg)
		if m == nil {
			t.Errorf("%s: message %q is not nginx's combined format", id, msg)
			continue
		}
		if got := m[1:]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: user, request, status, bytes, referrer, agent = %q, want %q", id, got, want)
		}
		if e["UPSTREAM"] != "w1" || e["STATUS"] != 200.0 {
			t.Errorf("%s: fields UPSTREAM %v, STATUS %v; want w1, 200", id, e["UPSTREAM"], e["STATUS"])
		}
	}

	srv.Close()
	send("/ping", "req-down", nil)
	testkit.Eventually(t, 5*time.Second, "canaryd's own 502 logged", func() bool {
		e := accessEntries(log)["req-down"]
		msg, _ := e["msg"].(string)
		m := combined.FindStringSubmatch(msg)
		return m != nil && m[3] == "502" && m[4] != "0"
	})
}
