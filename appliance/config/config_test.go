package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// writeDir creates a config directory holding files (name -> contents).
// Names may contain a slash to create a file in a subdirectory.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// contractExample is the config from CONTRACT.md, comments and all.
const contractExample = `[proxy]
listen = "127.0.0.1:8080"     # the public side

[admin]
socket = "/run/canaryd/admin.sock"   # canaryctl talks here (HTTP over a unix socket)
listen = "127.0.0.1:9090"            # optional: status page and /metrics; loopback by default
# token_file = "admin.token"         # required for mutations on a non-loopback listen

[[upstream]]
name = "w1"
url = "http://127.0.0.2:8001"
weight = 10
role = "stable"                  # "stable" or "canary"
# max_fails = 1                  # as nginx: failures within fail_timeout that take it out
# fail_timeout = "10s"

[[upstream]]
name = "w2"
url = "http://127.0.0.3:8002"
weight = 5
role = "canary"

[canary]
version = "v2"                   # the release's identity; a new value re-arms after a rollback
error_rate = 0.05                # canary 5xx/connect-error share that turns the light red
min_requests = 20                # fewer canary requests in the window: no verdict yet
window = "30s"
auto_rollback = false            # true: a red verdict rolls back by itself
# steps = [1, 5, 25, 50]         # optional progressive rollout, percent of traffic to canary
# step_interval = "5m"
# sticky_header = "X-User-ID"    # optional: one user stays on one version
# sticky_cookie = "uid"
# promote = "manual"             # or "auto": promote after the last step
# override_header = "X-Canary"   # optional: "always" / "never" for testers

[gpio]
status_led = "GPIO22"
canary_green = "GPIO27"
canary_red = "GPIO17"
button = "GPIO23"                # to ground, internal pull-up, active low
`

// minimal is the least a directory must say.
const minimal = `[proxy]
listen = ":8080"

[[upstream]]
name = "w1"
url = "http://10.0.0.1:8001"
role = "stable"
`

func TestLoadReadsTheContractExample(t *testing.T) {
	dir := writeDir(t, map[string]string{"canaryd.toml": contractExample})
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Proxy: Proxy{
			Listen:         "127.0.0.1:8080",
			ConnectTimeout: 5 * time.Second,
			HeaderTimeout:  60 * time.Second,
			IdleTimeout:    75 * time.Second,
			UpstreamIdle:   60 * time.Second,

			ClientHeaderTimeout: 10 * time.Second,
			MaxConnections:      1024,
		},
		Admin: Admin{Socket: "/run/canaryd/admin.sock", Listen: "127.0.0.1:9090", SocketGroup: "canaryctl"},
		Upstreams: []Upstream{
			{Name: "w1", URL: mustURL("http://127.0.0.2:8001"), Weight: 10, Role: Stable, MaxFails: 1, FailTimeout: 10 * time.Second, HealthInterval: 2 * time.Second, Pos: Pos{"canaryd.toml", 9}},
			{Name: "w2", URL: mustURL("http://127.0.0.3:8002"), Weight: 5, Role: Canary, MaxFails: 1, FailTimeout: 10 * time.Second, HealthInterval: 2 * time.Second, Pos: Pos{"canaryd.toml", 17}},
		},
		Canary: CanaryPolicy{Version: "v2", FalseAlarm: 0.01, Tolerance: 1.25, ErrorRate: 0.05, MinRequests: 20, Window: 30 * time.Second,
			LatencyRatio: 1.5, LatencyFloor: time.Millisecond, Promote: "manual", VersionHeader: "X-Canary-Version"},
		Journal:   Journal{Records: 100000, FileMaxBytes: 16 << 20},
		Incidents: Incidents{Keep: 100, MaxBytes: 64 << 20},
		GPIO:      GPIO{StatusLED: "GPIO22", CanaryGreen: "GPIO27", CanaryRed: "GPIO17", Button: "GPIO23"},
		Fleet:     Fleet{Release: "canary-pi"},
		Files:     []string{filepath.Join(dir, "canaryd.toml")},
	}
	want.Digest = got.Digest // TestDigestFollowsContent covers it
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	if !got.HasCanary() {
		t.Error("HasCanary() = false, want true")
	}
}

func TestLoadFillsDefaults(t *testing.T) {
	dir := writeDir(t, map[string]string{"canaryd.toml": minimal})
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Proxy: Proxy{
			Listen:         ":8080",
			ConnectTimeout: 5 * time.Second,
			HeaderTimeout:  60 * time.Second,
			IdleTimeout:    75 * time.Second,
			UpstreamIdle:   60 * time.Second,

			ClientHeaderTimeout: 10 * time.Second,
			MaxConnections:      1024,
		},
		Admin: Admin{Socket: "/run/canaryd/admin.sock", Listen: "127.0.0.1:9090", SocketGroup: "canaryctl"},
		Upstreams: []Upstream{
			{Name: "w1", URL: mustURL("http://10.0.0.1:8001"), Weight: 1, Role: Stable, MaxFails: 1, FailTimeout: 10 * time.Second, HealthInterval: 2 * time.Second, Pos: Pos{"canaryd.toml", 4}},
		},
		Canary: CanaryPolicy{FalseAlarm: 0.01, Tolerance: 1.25, ErrorRate: 0.05, MinRequests: 20, Window: 30 * time.Second,
			LatencyRatio: 1.5, LatencyFloor: time.Millisecond, Promote: "manual", VersionHeader: "X-Canary-Version"},
		Journal:   Journal{Records: 100000, FileMaxBytes: 16 << 20},
		Incidents: Incidents{Keep: 100, MaxBytes: 64 << 20},
		GPIO:      GPIO{StatusLED: "GPIO22", CanaryGreen: "GPIO27", CanaryRed: "GPIO17", Button: "GPIO23"},
		Fleet:     Fleet{Release: "canary-pi"},
		Files:     []string{filepath.Join(dir, "canaryd.toml")},
	}
	want.Digest = got.Digest // TestDigestFollowsContent covers it
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	if got.HasCanary() {
		t.Error("HasCanary() = true, want false")
	}
}

func TestLoadReadsEveryKey(t *testing.T) {
	dir := writeDir(t, map[string]string{"canaryd.toml": `[[upstream]]
name = "w1"
url = "http://10.0.0.1:8001"
role = "stable"

[[upstream]]
name = "w2"
url = "https://Example.com"
weight = 0
role = "canary"
max_fails = 0
fail_timeout = "1m"
health_path = "/healthz"
health_interval = "500ms"
slow_start = "45s"

[proxy]
listen = ":8080"
connect_timeout = "1s"
header_timeout = "2s"
idle_timeout = "3s"
client_header_timeout = "2s"
max_connections = 64
trusted_proxies = ["10.1.2.0/24", "192.168.1.7", "::1"]
upstream_idle_timeout = "4s"
access_log = true

[admin]
socket = "run/admin.sock"
listen = ""
token_file = "/etc/canaryd-token"
public_read = true
hosts = ["pi.example.lan", "10.0.0.7"]
socket_group = "operators"

[canary]
version = "v2"
false_alarm = 0.001
tolerance = 2
error_rate = 1
min_requests = 1_000
window = "1m30s"
auto_rollback = true
latency_ratio = 3.5
latency_floor = "5ms"
steps = [1, 5.5, 25, 100]
sticky_header = "X-User-ID"
sticky_cookie = "uid"
promote = "auto"
override_header = "X-Canary"
version_header = ""

[journal]
records = 5_000
file = true
file_max_bytes = 1_048_576
bodies = 4096

[incidents]
keep = 7
max_bytes = 2_097_152

[gpio]
status_led = ""
button = "GPIO4"
`})
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantProxy := Proxy{Listen: ":8080", ConnectTimeout: time.Second, HeaderTimeout: 2 * time.Second,
		IdleTimeout: 3 * time.Second, UpstreamIdle: 4 * time.Second, AccessLog: true,
		ClientHeaderTimeout: 2 * time.Second, MaxConnections: 64,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}}
	if !reflect.DeepEqual(got.Proxy, wantProxy) {
		t.Errorf("Proxy = %+v, want %+v", got.Proxy, wantProxy)
	}
	wantAdmin := Admin{Socket: filepath.Join(dir, "run/admin.sock"), Listen: "", TokenFile: "/etc/canaryd-token",
		PublicRead: true, Hosts: []string{"pi.example.lan", "10.0.0.7"}, SocketGroup: "operators"}
	if !reflect.DeepEqual(got.Admin, wantAdmin) {
		t.Errorf("Admin = %+v, want %+v", got.Admin, wantAdmin)
	}
	wantW2 := Upstream{Name: "w2", URL: mustURL("https://Example.com:443"), Weight: 0, Role: Canary, MaxFails: 0, FailTimeout: time.Minute,
		HealthPath: "/healthz", HealthInterval: 500 * time.Millisecond, SlowStart: 45 * time.Second, Pos: Pos{"canaryd.toml", 6}}
	if !reflect.DeepEqual(got.Upstreams[1], wantW2) {
		t.Errorf("Upstreams[1] = %+v, want %+v", got.Upstreams[1], wantW2)
	}
	wantCanary := CanaryPolicy{
		Version: "v2", FalseAlarm: 0.001, Tolerance: 2, ErrorRate: 1, MinRequests: 1000, Window: 90 * time.Second,
		AutoRollback: true, LatencyRatio: 3.5, LatencyFloor: 5 * time.Millisecond,
		Steps: []float64{1, 5.5, 25, 100}, StepInterval: 5 * time.Minute,
		StickyHeader: "X-User-ID", StickyCookie: "uid", Promote: "auto", OverrideHeader: "X-Canary",
	}
	if !reflect.DeepEqual(got.Canary, wantCanary) {
		t.Errorf("Canary = %+v, want %+v", got.Canary, wantCanary)
	}
	if want := (Journal{Records: 5000, File: true, FileMaxBytes: 1 << 20, Bodies: 4096}); got.Journal != want {
		t.Errorf("Journal = %+v, want %+v", got.Journal, want)
	}
	if want := (Incidents{Keep: 7, MaxBytes: 2 << 20}); got.Incidents != want {
		t.Errorf("Incidents = %+v, want %+v", got.Incidents, want)
	}
	wantGPIO := GPIO{StatusLED: "", CanaryGreen: "GPIO27", CanaryRed: "GPIO17", Button: "GPIO4"}
	if got.GPIO != wantGPIO {
		t.Errorf("GPIO = %+v, want %+v", got.GPIO, wantGPIO)
	}
}

func TestSlowStartTakesZeroForOffAndOneSecondToAnHour(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{
		{`"0s"`, 0},
		{`"1s"`, time.Second},
		{`"30s"`, 30 * time.Second},
		{`"1h"`, time.Hour},
	} {
		c, err := Load(writeDir(t, map[string]string{"canaryd.toml": "[proxy]\nlisten = \":8080\"\n" + upstream("w1", "stable", "slow_start = "+tt.value)}))
		if err != nil {
			t.Errorf("slow_start = %s: %v", tt.value, err)
			continue
		}
		if got := c.Upstreams[0].SlowStart; got != tt.want {
			t.Errorf("slow_start = %s: got %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestLoadResolvesTokenFileAgainstTheConfigDir(t *testing.T) {
	dir := writeDir(t, map[string]string{"canaryd.toml": minimal + "[admin]\ntoken_file = \"admin.token\"\n"})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "admin.token"); c.Admin.TokenFile != want {
		t.Errorf("TokenFile = %q, want %q", c.Admin.TokenFile, want)
	}
}

func TestLoadAddsTheDefaultPort(t *testing.T) {
	for raw, want := range map[string]string{
		"http://10.0.0.1":         "http://10.0.0.1:80",
		"https://10.0.0.1/":       "https://10.0.0.1:443",
		"http://[::1]":            "http://[::1]:80",
		"HTTP://Backend.local:81": "http://Backend.local:81",
	} {
		dir := writeDir(t, map[string]string{"canaryd.toml": strings.Replace(minimal, "http://10.0.0.1:8001", raw, 1)})
		c, err := Load(dir)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if got := c.Upstreams[0].URL.String(); got != want {
			t.Errorf("url %s loads as %s, want %s", raw, got, want)
		}
	}
}

func TestLoadAcceptsOtherTOMLSpellings(t *testing.T) {
	dir := writeDir(t, map[string]string{"canaryd.toml": `proxy.listen = ":8080"
canary = { version = "v2", steps = [10, 50] }
upstream = [
  { name = "w1", url = "http://10.0.0.1:1", role = "stable", weight = 0x10 },
  { name = "w2", url = "http://10.0.0.2:1", role = "canary" },
]
`})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy.Listen != ":8080" || c.Canary.Version != "v2" || len(c.Upstreams) != 2 {
		t.Fatalf("Load = %+v", c)
	}
	if u := c.Upstreams[0]; u.Weight != 16 || u.Pos != (Pos{"canaryd.toml", 4}) {
		t.Errorf("Upstreams[0] = %+v, want weight 16 at canaryd.toml:4", u)
	}
	if c.Upstreams[1].Pos != (Pos{"canaryd.toml", 5}) {
		t.Errorf("Upstreams[1].Pos = %v, want canaryd.toml:5", c.Upstreams[1].Pos)
	}
}

func TestLoadAcceptsAByteOrderMark(t *testing.T) {
	dir := writeDir(t, map[string]string{"canaryd.toml": "\ufeff" + minimal})
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMergesFilesInLexicalOrder(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"50-canary.toml": "[[upstream]]\nname = \"c1\"\nurl = \"http://10.0.0.9:1\"\nrole = \"canary\"\n\n[canary]\nversion = \"v9\"\n",
		"00-base.toml":   "[proxy]\nlisten = \":80\"\n\n[canary]\nwindow = \"1m\"\n",
		"10-stable.toml": "[[upstream]]\nname = \"s1\"\nurl = \"http://10.0.0.1:1\"\nrole = \"stable\"\n\n[[upstream]]\nname = \"s2\"\nurl = \"http://10.0.0.2:1\"\nrole = \"stable\"\n",
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range c.Upstreams {
		got = append(got, fmt.Sprintf("%s@%s", u.Name, u.Pos))
	}
	want := []string{"s1@10-stable.toml:1", "s2@10-stable.toml:6", "c1@50-canary.toml:1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upstreams = %v, want %v", got, want)
	}
	if c.Canary.Version != "v9" || c.Canary.Window != time.Minute {
		t.Errorf("[canary] from two files = %+v, want version v9 and window 1m", c.Canary)
	}
	wantFiles := []string{
		filepath.Join(dir, "00-base.toml"),
		filepath.Join(dir, "10-stable.toml"),
		filepath.Join(dir, "50-canary.toml"),
	}
	if !reflect.DeepEqual(c.Files, wantFiles) {
		t.Errorf("Files = %v, want %v", c.Files, wantFiles)
	}
}

func TestLoadIgnoresFilesThatAreNotConfig(t *testing.T) {
	const garbage = "this is [not toml\n"
	dir := writeDir(t, map[string]string{
		"canaryd.toml":            minimal,
		".hidden.toml":            garbage,
		".canaryd.toml.swp":       garbage,
		"canaryd.toml.swp":        garbage,
		"canaryd.toml~":           garbage,
		"canaryd.toml.dpkg-new":   garbage,
		"canaryd.toml.dpkg-old":   garbage,
		"canaryd.toml.dpkg-dist":  garbage,
		"canaryd.toml.rpmnew":     garbage,
		"README":                  garbage,
		"conf.d/extra.toml":       garbage,
		"dir.toml/inside.toml":    garbage,
		"..2024_01_01/other.toml": garbage,
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "canaryd.toml")}; !reflect.DeepEqual(c.Files, want) {
		t.Errorf("Files = %v, want %v", c.Files, want)
	}
}

// Kubernetes mounts a ConfigMap as symlinks into a hidden, versioned
// directory, swapped atomically on update.
func TestLoadFollowsSymlinkedFiles(t *testing.T) {
	dir := writeDir(t, map[string]string{"..2024_01_01/canaryd.toml": minimal})
	if err := os.Symlink("..2024_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/canaryd.toml", filepath.Join(dir, "canaryd.toml")); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "canaryd.toml")}; !reflect.DeepEqual(c.Files, want) {
		t.Errorf("Files = %v, want %v", c.Files, want)
	}
	if c.Upstreams[0].Name != "w1" {
		t.Errorf("upstreams = %+v, want w1 from the symlinked file", c.Upstreams)
	}
}

func TestLoadRefusesADanglingSymlink(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.toml": minimal})
	if err := os.Symlink("missing.txt", filepath.Join(dir, "b.toml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "b.toml") {
		t.Errorf("Load = %v, want an error naming b.toml", err)
	}
}

func TestLoadRefusesADirectoryWithoutConfig(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"empty":        {},
		"only ignored": {"canaryd.toml~": minimal, "sub/canaryd.toml": minimal},
	} {
		dir := writeDir(t, files)
		_, err := Load(dir)
		if want := dir + ": no *.toml config file"; err == nil || err.Error() != want {
			t.Errorf("%s: Load = %v, want %q", name, err, want)
		}
	}
}

func TestLoadRefusesAMissingDirectory(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load = %v, want a not-exist error", err)
	}
}

// upstream returns an [[upstream]] entry starting with name, url and role
// on its lines 2 to 4, and extra lines from line 5 on. A key set in extra
// leaves a comment in its default's place, so lines stay where they are.
func upstream(name, role string, extra ...string) string {
	set := map[string]bool{}
	for _, l := range extra {
		key, _, _ := strings.Cut(l, "=")
		set[strings.TrimSpace(key)] = true
	}
	s := "[[upstream]]\n"
	for _, kv := range [][2]string{{"name", name}, {"url", "http://10.0.0.1:8001"}, {"role", role}} {
		if set[kv[0]] {
			s += "# " + kv[0] + " below\n"
		} else {
			s += fmt.Sprintf("%s = %q\n", kv[0], kv[1])
		}
	}
	for _, l := range extra {
		s += l + "\n"
	}
	return s
}

// stubLookup resolves host names from names for the rest of t, and
// nothing else: no test waits on DNS.
func stubLookup(t testing.TB, names map[string][]string) {
	saved := lookupHost
	t.Cleanup(func() { lookupHost = saved })
	lookupHost = func(_ context.Context, host string) ([]net.IPAddr, error) {
		var ips []net.IPAddr
		for _, a := range names[host] {
			ips = append(ips, net.IPAddr{IP: net.ParseIP(a)})
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return ips, nil
	}
}

func TestAdminListenOffLoopbackNeedsAToken(t *testing.T) {
	stubLookup(t, map[string][]string{"localhost": {"127.0.0.1", "::1"}, "lan.test": {"127.0.0.1", "192.168.1.20"}})
	for _, tt := range []struct {
		admin string
		ok    bool
	}{
		{`listen = "127.0.0.1:9090"`, true},
		{`listen = "127.0.0.2:9090"`, true},
		{`listen = "[::1]:9090"`, true},
		{`listen = "localhost:9090"`, true},
		{`listen = ""`, true},
		{"", true}, // the default, 127.0.0.1:9090
		{`listen = "0.0.0.0:9090"`, false},
		{`listen = "lan.test:9090"`, false}, // one of its addresses is not loopback
		{"listen = \"0.0.0.0:9090\"\ntoken_file = \"admin.token\"", true},
		{"listen = \"192.168.1.20:9090\"\ntoken_file = \"admin.token\"", true},
	} {
		_, err := Load(writeDir(t, map[string]string{"canaryd.toml": minimal + "[admin]\n" + tt.admin + "\n"}))
		if tt.ok && err != nil {
			t.Errorf("%s: %v", tt.admin, err)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "set admin.token_file to require a token, or listen on 127.0.0.1")) {
			t.Errorf("%s: Load = %v, want a refusal that names admin.token_file", tt.admin, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	stubLookup(t, map[string][]string{"lan.test": {"192.168.1.20"}})
	const listen = "[proxy]\nlisten = \":8080\"\n" // lines 1-2
	const stable = "[[upstream]]\nname = \"s\"\nurl = \"http://10.0.0.1:1\"\nrole = \"stable\"\n"

	tests := []struct {
		name  string
		files map[string]string
		want  string // the whole error, or its start when it ends in "..."
	}{
		// TOML itself.
		{"syntax error", map[string]string{"a.toml": listen + "[[upstream]\n"},
			"a.toml:3: ..."},
		{"key twice in one file", map[string]string{"a.toml": listen + "listen = \":9\"\n"},
			"a.toml:3: ..."},
		{"syntax error in a later file is reported", map[string]string{"a.toml": minimal, "b.toml": "\n\nx = \n"},
			"b.toml:3: ..."},

		// Places and types.
		{"unknown key in upstream", map[string]string{"a.toml": listen + upstream("w1", "stable", "wieght = 3")},
			`a.toml:7: unknown key "wieght" in [[upstream]]`},
		{"unknown key in a section", map[string]string{"a.toml": listen + "lisen = \"x\"\n" + stable},
			`a.toml:3: unknown key "lisen" in [proxy]`},
		{"dotted unknown key", map[string]string{"a.toml": listen + "tls.cert = \"x\"\n" + stable},
			`a.toml:3: unknown key "tls.cert" in [proxy]`},
		{"unknown section", map[string]string{"a.toml": listen + stable + "\n[prox]\nlisten = \":1\"\n"},
			"a.toml:8: unknown section [prox] ..."},
		{"key outside any section", map[string]string{"a.toml": "listen = \":1\"\n" + listen + stable},
			`a.toml:1: unknown key "listen" outside any section ...`},
		{"subtable of a section", map[string]string{"a.toml": listen + stable + "[proxy.tls]\n"},
			`a.toml:7: unknown key "tls" in [proxy]`},
		{"upstream as a plain table", map[string]string{"a.toml": listen + "[upstream]\nname = \"w1\"\n"},
			"a.toml:3: [upstream] must be [[upstream]]..."},
		{"section as an array of tables", map[string]string{"a.toml": "[[proxy]]\nlisten = \":1\"\n" + stable},
			"a.toml:1: [[proxy]] must be [proxy]..."},
		{"upstream as an array of numbers", map[string]string{"a.toml": "upstream = [1]\n" + listen},
			"a.toml:1: upstream must be an array of tables..."},
		{"section as a value", map[string]string{"a.toml": "proxy = \":8080\"\n" + stable},
			"a.toml:1: proxy must be a table..."},
		{"string for an integer", map[string]string{"a.toml": listen + upstream("w1", "stable", `weight = "ten"`)},
			`a.toml:7: upstream.weight: want an integer, got string "ten"`},
		{"float for an integer", map[string]string{"a.toml": listen + upstream("w1", "stable", "max_fails = 1.5")},
			`a.toml:7: upstream.max_fails: want an integer, got float 1.5`},
		{"integer for a string", map[string]string{"a.toml": "[proxy]\nlisten = 8080\n" + stable},
			`a.toml:2: proxy.listen: want a string, got integer 8080`},
		{"string for a boolean", map[string]string{"a.toml": listen + "access_log = \"yes\"\n" + stable},
			`a.toml:3: proxy.access_log: want true or false, got string "yes"`},
		{"table for a string", map[string]string{"a.toml": listen + stable + "[canary]\nversion = { v = 2 }\n"},
			`a.toml:8: canary.version: want a string, got table`},
		{"integer for a duration", map[string]string{"a.toml": listen + stable + "[canary]\nwindow = 30\n"},
			`a.toml:8: canary.window: want a duration string such as "30s", got integer 30`},
		{"duration without unit", map[string]string{"a.toml": listen + stable + "[canary]\nwindow = \"30\"\n"},
			`a.toml:8: canary.window: "30" is not a duration ...`},
		{"zero duration", map[string]string{"a.toml": listen + "connect_timeout = \"0s\"\n" + stable},
			`a.toml:3: proxy.connect_timeout: "0s" is not more than zero`},
		{"negative fail_timeout", map[string]string{"a.toml": listen + upstream("w1", "stable", `fail_timeout = "-1s"`)},
			`a.toml:7: upstream.fail_timeout: "-1s" is not more than zero`},
		{"integer too large for int", map[string]string{"a.toml": listen + upstream("w1", "stable", "weight = 99999999999999999")},
			"a.toml:7: ..."},
		{"steps as a number", map[string]string{"a.toml": listen + stable + "[canary]\nsteps = 5\n"},
			`a.toml:8: canary.steps: want an array of numbers, got integer 5`},
		{"string for a number", map[string]string{"a.toml": listen + stable + "[canary]\nerror_rate = \"5%\"\n"},
			`a.toml:8: canary.error_rate: want a number, got string "5%"`},
		{"steps with a string", map[string]string{"a.toml": listen + stable + "[canary]\nsteps = [1, \"5\"]\n"},
			`a.toml:8: canary.steps: want an array of numbers, got string "5" in it`},

		// Merging.
		{"scalar set in two files", map[string]string{"a.toml": listen + stable, "b.toml": "\n\n[proxy]\nlisten = \":9\"\n"},
			"b.toml:4: proxy.listen is already set in a.toml:2"},
		{"array set in two files", map[string]string{"a.toml": minimal + "[canary]\nsteps = [1]\n", "b.toml": "canary.steps = [2]\n"},
			"b.toml:1: canary.steps is already set in a.toml:9"},
		{"duplicate upstream name in one file", map[string]string{"a.toml": listen + stable + upstream("s", "stable")},
			`a.toml:8: upstream name "s" is already used in a.toml:4`},
		{"duplicate upstream name across files", map[string]string{"a.toml": listen + stable, "b.toml": "\n" + upstream("s", "stable")},
			`b.toml:3: upstream name "s" is already used in a.toml:4`},

		// Required keys.
		{"no proxy section", map[string]string{"a.toml": stable, "b.toml": "[gpio]\n"},
			"a.toml: proxy.listen is required ..."},
		{"proxy section without listen", map[string]string{"a.toml": stable, "b.toml": "\n[proxy]\naccess_log = true\n"},
			"b.toml:2: proxy.listen is required ..."},
		{"empty listen", map[string]string{"a.toml": "[proxy]\nlisten = \"\"\n" + stable},
			"a.toml:2: proxy.listen is required ..."},
		{"no upstreams", map[string]string{"a.toml": listen},
			"a.toml: no [[upstream]] configured ..."},
		{"upstream without name", map[string]string{"a.toml": listen + "\n[[upstream]]\nurl = \"http://10.0.0.1:1\"\nrole = \"stable\"\n"},
			"a.toml:4: upstream: name is required ..."},
		{"upstream without url", map[string]string{"a.toml": listen + "[[upstream]]\nname = \"w1\"\nrole = \"stable\"\n"},
			`a.toml:3: upstream "w1": url is required ...`},
		{"upstream without role", map[string]string{"a.toml": listen + "[[upstream]]\nname = \"w1\"\nurl = \"http://10.0.0.1:1\"\n"},
			`a.toml:3: upstream "w1": role is required ("stable" or "canary")`},
		{"canary without version", map[string]string{"a.toml": listen + stable + upstream("c", "canary")},
			`a.toml:7: canary.version is required: upstream "c" is a canary ...`},
		{"canary section without version", map[string]string{"a.toml": listen + stable + upstream("c", "canary") + "[canary]\nwindow = \"1m\"\n"},
			`a.toml:11: canary.version is required: upstream "c" is a canary ...`},
		{"canary without stable", map[string]string{"a.toml": listen + upstream("c", "canary") + "[canary]\nversion = \"v2\"\n"},
			`a.toml:3: upstream "c" is a canary, but no upstream with role = "stable" and a weight above 0 ...`},
		{"canary with only a stable that is off", map[string]string{"a.toml": listen +
			"[[upstream]]\nname = \"s\"\nurl = \"http://10.0.0.1:80\"\nrole = \"stable\"\nweight = 0\n" +
			upstream("c", "canary") + "[canary]\nversion = \"v2\"\n"},
			`a.toml:8: upstream "c" is a canary, but no upstream with role = "stable" and a weight above 0 ...`},

		// Upstreams.
		{"bad upstream name", map[string]string{"a.toml": listen + upstream("web 1", "stable")},
			`a.toml:4: upstream "web 1": name may only have letters, digits, '.', '_' and '-'`},
		{"bad role", map[string]string{"a.toml": listen + upstream("w1", "beta")},
			`a.toml:6: upstream "w1": role "beta" is not "stable" or "canary"`},
		{"weight too large", map[string]string{"a.toml": listen + upstream("w1", "stable", "weight = 1001")},
			`a.toml:7: upstream "w1": weight 1001 is out of range ...`},
		{"negative weight", map[string]string{"a.toml": listen + upstream("w1", "stable", "weight = -1")},
			`a.toml:7: upstream "w1": weight -1 is out of range ...`},
		{"negative max_fails", map[string]string{"a.toml": listen + upstream("w1", "stable", "max_fails = -1")},
			`a.toml:7: upstream "w1": max_fails -1 is negative ...`},
		{"too many upstreams", map[string]string{"a.toml": listen + manyUpstreams(256), "b.toml": upstream("x", "stable")},
			"b.toml:1: more than 256 upstreams"},

		// URLs.
		{"url scheme", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "htp://x"`)},
			`a.toml:7: upstream "w2": url "htp://x": unsupported scheme "htp" (want http or https)`},
		{"url without scheme", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "10.0.0.1:80"`)},
			`a.toml:7: upstream "w2": url "10.0.0.1:80": missing scheme ...`},
		{"url without host", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://:80"`)},
			`a.toml:7: upstream "w2": url "http://:80": missing host`},
		{"url with path", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://x/api"`)},
			`a.toml:7: upstream "w2": url "http://x/api": must not have a path ("/api") ...`},
		{"url with query", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://x/?a=1"`)},
			`a.toml:7: upstream "w2": url "http://x/?a=1": must not have a query`},
		{"url with fragment", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://x#top"`)},
			`a.toml:7: upstream "w2": url "http://x#top": must not have a fragment`},
		{"url with userinfo", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://u:p@x"`)},
			`a.toml:7: upstream "w2": url "http://u:p@x": must not contain a user or password ...`},
		{"url with port 0", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://x:0"`)},
			`a.toml:7: upstream "w2": url "http://x:0": port 0 is out of range (want 1 to 65535)`},
		{"url with port too large", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://x:65536"`)},
			`a.toml:7: upstream "w2": url "http://x:65536": port 65536 is out of range (want 1 to 65535)`},
		{"url unparsable", map[string]string{"a.toml": listen + upstream("w2", "stable", `url = "http://x:y"`)},
			`a.toml:7: upstream "w2": url "http://x:y": invalid port ":y" after host`},

		// Listen addresses.
		{"listen without port", map[string]string{"a.toml": "[proxy]\nlisten = \"8080\"\n" + stable},
			`a.toml:2: proxy.listen: "8080" is not host:port ...`},
		{"listen with named port", map[string]string{"a.toml": "[proxy]\nlisten = \":http\"\n" + stable},
			`a.toml:2: proxy.listen: ":http" has port "http" (want a number from 0 to 65535)`},
		{"admin listen bad", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \"localhost\"\n"},
			`a.toml:8: admin.listen: "localhost" is not host:port ...`},
		{"admin socket empty", map[string]string{"a.toml": listen + stable + "[admin]\nsocket = \"\"\n"},
			`a.toml:8: admin.socket must not be empty ...`},
		{"admin listen on every interface without a token", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \"0.0.0.0:9090\"\n"},
			`a.toml:8: admin.listen: "0.0.0.0:9090" listens on every interface: set admin.token_file to require a token, or listen on 127.0.0.1`},
		{"admin listen on every interface, IPv6", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \"[::]:9090\"\n"},
			`a.toml:8: admin.listen: "[::]:9090" listens on every interface: set admin.token_file ...`},
		{"admin listen without a host", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \":9090\"\n"},
			`a.toml:8: admin.listen: ":9090" listens on every interface: set admin.token_file ...`},
		{"admin listen on a LAN address", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \"192.168.1.20:9090\"\n"},
			`a.toml:8: admin.listen: "192.168.1.20:9090" is not a loopback address: set admin.token_file ...`},
		{"admin listen on a name that is not loopback", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \"lan.test:9090\"\n"},
			`a.toml:8: admin.listen: "lan.test:9090" resolves to 192.168.1.20, not a loopback address: set admin.token_file ...`},
		{"admin listen on a name that does not resolve", map[string]string{"a.toml": listen + stable + "[admin]\nlisten = \"nowhere.test:9090\"\n"},
			`a.toml:8: admin.listen: "nowhere.test:9090" does not resolve, so it is not known to be loopback: set admin.token_file ...`},
		{"admin hosts with a port", map[string]string{"a.toml": listen + stable + "[admin]\nhosts = [\"pi.lan:9090\"]\n"},
			`a.toml:8: admin.hosts: "pi.lan:9090" is not a host name or an IP address ...`},
		{"admin hosts not strings", map[string]string{"a.toml": listen + stable + "[admin]\nhosts = [1]\n"},
			`a.toml:8: admin.hosts: want an array of strings, got integer 1 in it`},
		{"admin hosts a string", map[string]string{"a.toml": listen + stable + "[admin]\nhosts = \"pi.lan\"\n"},
			`a.toml:8: admin.hosts: want an array of strings, got string "pi.lan"`},
		{"admin socket_group odd", map[string]string{"a.toml": listen + stable + "[admin]\nsocket_group = \"a b\"\n"},
			`a.toml:8: admin.socket_group: "a b" is not a group name ...`},

		// Canary policy.
		{"error_rate zero", map[string]string{"a.toml": listen + stable + "[canary]\nerror_rate = 0\n"},
			`a.toml:8: canary.error_rate: 0 is out of range ...`},
		{"error_rate above one", map[string]string{"a.toml": listen + stable + "[canary]\nerror_rate = 1.5\n"},
			`a.toml:8: canary.error_rate: 1.5 is out of range ...`},
		{"error_rate nan", map[string]string{"a.toml": listen + stable + "[canary]\nerror_rate = nan\n"},
			`a.toml:8: canary.error_rate: NaN is out of range ...`},
		{"latency_ratio within the buckets' width", map[string]string{"a.toml": listen + stable + "[canary]\nlatency_ratio = 1.1\n"},
			`a.toml:8: canary.latency_ratio: 1.1 is out of range (want 0 for off, or 1.25 to 1000; 2 is twice the stable's p90)`},
		{"health_path without a slash", map[string]string{"a.toml": listen + upstream("w1", "stable", `health_path = "healthz"`)},
			`a.toml:7: upstream "w1": health_path "healthz" is not a path (want one that starts with "/", e.g. "/healthz")`},
		{"health_interval too short", map[string]string{"a.toml": listen + upstream("w1", "stable", `health_interval = "10ms"`)},
			`a.toml:7: upstream "w1": health_interval 10ms is out of range (want 100ms to 1h)`},
		{"slow_start under a second", map[string]string{"a.toml": listen + upstream("w1", "stable", `slow_start = "500ms"`)},
			`a.toml:7: upstream "w1": slow_start 500ms is out of range (want "0s" for off, or 1s to 1h)`},
		{"slow_start over an hour", map[string]string{"a.toml": listen + upstream("w1", "stable", `slow_start = "2h"`)},
			`a.toml:7: upstream "w1": slow_start 2h0m0s is out of range (want "0s" for off, or 1s to 1h)`},
		{"client_header_timeout too short", map[string]string{"a.toml": "[proxy]\nlisten = \":8080\"\nclient_header_timeout = \"10ms\"\n" + stable},
			`a.toml:3: proxy.client_header_timeout = 10ms: want 100ms or more (nginx's default is 60s, ours 10s)`},
		{"upstream is the admin listener", map[string]string{"a.toml": "[proxy]\nlisten = \":8080\"\n[admin]\nlisten = \"127.0.0.1:9090\"\n[[upstream]]\nname = \"w1\"\nurl = \"http://localhost:9090\"\nrole = \"stable\"\n"},
			`a.toml:7: upstream "w1": url http://localhost:9090 is canaryd's own admin.listen (127.0.0.1:9090): the proxy never forwards to the admin side; name the service's address`},
		{"upstream is the proxy itself", map[string]string{"a.toml": "[proxy]\nlisten = \":8080\"\n[[upstream]]\nname = \"w1\"\nurl = \"http://127.0.0.1:8080\"\nrole = \"stable\"\n"},
			`a.toml:5: upstream "w1": url http://127.0.0.1:8080 is canaryd's own proxy.listen (:8080): requests would loop back into canaryd; name the service's address`},
		{"trusted_proxies not an address", map[string]string{"a.toml": "[proxy]\nlisten = \":8080\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n" + stable},
			`a.toml:3: proxy.trusted_proxies: "10.0.0.0/33" is not an address or a CIDR prefix (e.g. "192.168.1.0/24" or "10.0.0.7")`},
		{"max_connections too few", map[string]string{"a.toml": "[proxy]\nlisten = \":8080\"\nmax_connections = 4\n" + stable},
			`a.toml:3: proxy.max_connections = 4: want 16 to 1048576 (each waiting client connection holds about 16 KiB)`},
		{"slow_start negative", map[string]string{"a.toml": listen + upstream("w1", "stable", `slow_start = "-1s"`)},
			`a.toml:7: upstream.slow_start: "-1s" is negative (want "0s" for off, or a duration such as "30s")`},
		{"latency_ratio negative", map[string]string{"a.toml": listen + stable + "[canary]\nlatency_ratio = -2\n"},
			`a.toml:8: canary.latency_ratio: -2 is out of range ...`},
		{"min_requests zero", map[string]string{"a.toml": listen + stable + "[canary]\nmin_requests = 0\n"},
			`a.toml:8: canary.min_requests: 0 is too small (want at least 1)`},
		{"step above 100", map[string]string{"a.toml": listen + stable + "[canary]\nsteps = [50, 101]\n"},
			`a.toml:8: canary.steps: 101 is not a share of traffic ...`},
		{"step zero", map[string]string{"a.toml": listen + stable + "[canary]\nsteps = [0, 5]\n"},
			`a.toml:8: canary.steps: 0 is not a share of traffic ...`},
		{"steps not ascending", map[string]string{"a.toml": listen + stable + "[canary]\nsteps = [1, 25, 25]\n"},
			`a.toml:8: canary.steps: 25 follows 25 (want strictly ascending steps)`},
		{"step_interval too short", map[string]string{"a.toml": listen + stable + "[canary]\nsteps = [10, 50]\nstep_interval = \"100ms\"\n"},
			`a.toml:9: canary.step_interval: 100ms is out of range (want 1s to 720h; 5m is five minutes at each step)`},
		{"journal too large", map[string]string{"a.toml": listen + stable + "[journal]\nrecords = 2_000_000\n"},
			`a.toml:8: journal.records: 2000000 is out of range (want 0 for off, up to 1000000; about 20 bytes each, 256 at most)`},
		{"bodies too large", map[string]string{"a.toml": listen + stable + "[journal]\nbodies = 1_000_000\n"},
			`a.toml:8: journal.bodies: 1000000 is out of range (want 0 for off, up to 65536 bytes per request)`},
		{"no incident kept", map[string]string{"a.toml": listen + stable + "[incidents]\nkeep = 0\n"},
			`a.toml:8: incidents.keep: 0 is out of range (want 1 to 10000 reports)`},
		{"bad version header", map[string]string{"a.toml": listen + stable + "[canary]\nversion_header = \"X Version\"\n"},
			`a.toml:8: canary.version_header: "X Version" is not a valid HTTP header name`},
		{"bad promote", map[string]string{"a.toml": listen + stable + "[canary]\npromote = \"always\"\n"},
			`a.toml:8: canary.promote: "always" is not "manual" or "auto"`},
		{"bad sticky header", map[string]string{"a.toml": listen + stable + "[canary]\nsticky_header = \"X User\"\n"},
			`a.toml:8: canary.sticky_header: "X User" is not a valid HTTP header name`},
		{"bad sticky cookie", map[string]string{"a.toml": listen + stable + "[canary]\nsticky_cookie = \"a;b\"\n"},
			`a.toml:8: canary.sticky_cookie: "a;b" is not a valid cookie name`},
		{"bad override header", map[string]string{"a.toml": listen + stable + "[canary]\noverride_header = \"X:C\"\n"},
			`a.toml:8: canary.override_header: "X:C" is not a valid HTTP header name`},

		// The fleet.
		{"fleet server not a NATS URL", map[string]string{"a.toml": minimal, "fleet.toml": "[fleet]\nservers = [\"http://hub:4222\"]\n"},
			`fleet.toml:2: fleet.servers: "http://hub:4222" is not a NATS URL (want e.g. "nats://hub.example:4222")`},
		{"fleet name with a dot", map[string]string{"a.toml": minimal, "fleet.toml": "[fleet]\nservers = [\"nats://hub:4222\"]\nname = \"shop.1\"\n"},
			`fleet.toml:3: fleet.name: "shop.1": letters, digits, - and _ only (it is one token of a NATS subject)`},
		{"fleet release empty", map[string]string{"a.toml": minimal, "fleet.toml": "[fleet]\nrelease = \"\"\n"},
			`fleet.toml:2: fleet.release: "": letters, digits, - and _ only (it names the release's bucket)`},
		{"fleet with two logins", map[string]string{"a.toml": minimal, "fleet.toml": "[fleet]\ncredentials = \"a.creds\"\ntoken_file = \"nats.token\"\n"},
			`fleet.toml:3: fleet: credentials and token_file are two ways to log in to NATS: keep one`},

		// Pins.
		{"pin off the header", map[string]string{"a.toml": minimal, "gpio.toml": "[gpio]\n\nbutton = \"GPIO99\"\n"},
			`gpio.toml:3: gpio.button: "GPIO99" is not a header pin (want GPIO0 to GPIO27, or "" if not wired)`},
		{"pin number without prefix", map[string]string{"a.toml": minimal, "gpio.toml": "[gpio]\nbutton = \"17\"\n"},
			`gpio.toml:2: gpio.button: "17" is not a header pin ...`},
		{"pin in lower case", map[string]string{"a.toml": minimal, "gpio.toml": "[gpio]\nbutton = \"gpio17\"\n"},
			`gpio.toml:2: gpio.button: "gpio17" is not a header pin ...`},
		{"pin with a leading zero", map[string]string{"a.toml": minimal, "gpio.toml": "[gpio]\nbutton = \"GPIO05\"\n"},
			`gpio.toml:2: gpio.button: "GPIO05" is not a header pin ...`},
		{"pin used twice", map[string]string{"a.toml": minimal, "gpio.toml": "[gpio]\nbutton = \"GPIO5\"\nstatus_led = \"GPIO5\"\n"},
			`gpio.toml:3: gpio.status_led: GPIO5 is already used by gpio.button (gpio.toml:2)`},
		{"pin taken by a default", map[string]string{"a.toml": minimal, "gpio.toml": "[gpio]\nbutton = \"GPIO22\"\n"},
			`gpio.toml:2: gpio.button: GPIO22 is gpio.status_led's default pin (set gpio.status_led to another pin, or "" if not wired)`},

		// Several problems: the first in reading order wins.
		{"first error by file and line", map[string]string{
			"a.toml": listen + upstream("w1", "stable", "weight = 5000") + "[canary]\nerror_rate = 7\n",
			"b.toml": "[gpio]\nbutton = \"GPIO99\"\n",
		}, `a.toml:7: upstream "w1": weight 5000 is out of range ...`},
		{"lined error before missing key", map[string]string{"a.toml": stable + "[canary]\nerror_rate = 7\n"},
			`a.toml:6: canary.error_rate: 7 is out of range ...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeDir(t, tt.files))
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.want)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(got, strings.TrimSpace(prefix)) {
					t.Errorf("Load error:\n got %s\nwant %s", got, tt.want)
				}
			} else if got != tt.want {
				t.Errorf("Load error:\n got %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("Load error has several lines: %q", got)
			}
		})
	}
}

func manyUpstreams(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(upstream(fmt.Sprintf("w%d", i), "stable"))
	}
	return b.String()
}

func TestLoadErrorCarriesItsPosition(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.toml": "[proxy]\nlisten = \":1\"\n" + upstream("w1", "stable", "weight = 2000")})
	_, err := Load(dir)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load = %v, want a *config.Error", err)
	}
	if cerr.Pos != (Pos{"a.toml", 7}) {
		t.Errorf("Pos = %v, want a.toml:7", cerr.Pos)
	}
}

func TestDigestFollowsContent(t *testing.T) {
	cfg := "[proxy]\nlisten = \":8080\"\n[[upstream]]\nname = \"w1\"\nurl = \"http://10.0.0.1:8001\"\nrole = \"stable\"\n"
	load := func(files map[string]string) [32]byte {
		t.Helper()
		c, err := Load(writeDir(t, files))
		if err != nil {
			t.Fatal(err)
		}
		return c.Digest
	}
	a := load(map[string]string{"canaryd.toml": cfg})
	if b := load(map[string]string{"canaryd.toml": cfg, ".canaryd.toml.swp": "swap"}); b != a {
		t.Error("an ignored file changed the digest")
	}
	if c := load(map[string]string{"canaryd.toml": cfg + "weight = 2\n"}); c == a {
		t.Error("a changed file kept the digest")
	}
	if d := load(map[string]string{"other.toml": cfg}); d == a {
		t.Error("a renamed file kept the digest")
	}
}

// The file is parsed once, by go-toml's parser; the rules its decoder would
// add are the walk's and the decoder's. go-toml's Unmarshal is the oracle
// that each document here is not TOML.
func TestLoadRefusesWhatTOMLRefuses(t *testing.T) {
	const listen = "[proxy]\nlisten = \":8080\"\n" // lines 1-2
	tests := []struct {
		name, text, want string
	}{
		{"section twice", listen + upstream("w1", "stable") + "[proxy]\naccess_log = true\n",
			"a.toml:7: [proxy] is already defined in a.toml:1 (each section once in a file)"},
		{"header after dotted keys", "proxy.listen = \":1\"\n" + upstream("w1", "stable") + "[proxy]\naccess_log = true\n",
			"a.toml:6: [proxy] is already defined in a.toml:1 (each section once in a file)"},
		{"dotted key after an inline table", "canary = { version = \"v2\" }\ncanary.window = \"1m\"\n" + listen + upstream("w1", "stable"),
			"a.toml:2: [canary] is already defined in a.toml:1 (each section once in a file)"},
		{"array table after an array of inline tables",
			"upstream = [{ name = \"a\", url = \"http://10.0.0.1:1\", role = \"stable\" }]\n" + listen + upstream("w1", "stable"),
			"a.toml:4: [[upstream]] is already defined in a.toml:1 (each section once in a file)"},
		{"key twice in an inline table", "canary = { version = \"a\", version = \"b\" }\n" + listen + upstream("w1", "stable"),
			"a.toml:1: canary.version is already set in a.toml:1"},
		{"key twice through a dotted key", "proxy.listen = \":1\"\nproxy.listen = \":2\"\n" + upstream("w1", "stable"),
			"a.toml:2: proxy.listen is already set in a.toml:1"},
		{"key twice in an upstream", listen + upstream("w1", "stable", "weight = 1", "weight = 2"),
			"a.toml:8: upstream.weight is already set in a.toml:7"},
		{"integer beyond 64 bits", listen + upstream("w1", "stable", "weight = 99999999999999999999"),
			"a.toml:7: upstream.weight: 99999999999999999999 is out of range"},
		{"float beyond float64", listen + upstream("w1", "stable") + "[canary]\nerror_rate = 1e400\n",
			"a.toml:8: canary.error_rate: +Inf is out of range (want more than 0 and at most 1; 0.05 is 5%)"},
		{"impossible date", listen + upstream("w1", "stable") + "[canary]\nversion = 2024-02-30\n",
			"a.toml:8: canary.version: want a string, got date 2024-02-30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := toml.Unmarshal([]byte(tt.text), new(map[string]any)); err == nil {
				t.Fatalf("go-toml accepts the document: not a case for this test")
			}
			_, err := Load(writeDir(t, map[string]string{"a.toml": tt.text}))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLoadAcceptsWhatTOMLAllowsTwice(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"dotted keys of one section": {"a.toml": "proxy.listen = \":1\"\nproxy.access_log = true\n" + upstream("w1", "stable")},
		"a section in two files":     {"a.toml": "[proxy]\nlisten = \":1\"\n" + upstream("w1", "stable"), "b.toml": "[proxy]\naccess_log = true\n"},
		"several [[upstream]]":       {"a.toml": "[proxy]\nlisten = \":1\"\n" + upstream("w1", "stable") + upstream("w2", "stable")},
	} {
		if err := toml.Unmarshal([]byte(files["a.toml"]), new(map[string]any)); err != nil {
			t.Fatalf("%s: go-toml refuses a.toml: %v", name, err)
		}
		if _, err := Load(writeDir(t, files)); err != nil {
			t.Errorf("%s: Load = %v", name, err)
		}
	}
}
