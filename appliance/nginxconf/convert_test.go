package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/config"
)

// seed is the seed article's config: v1 and v2 of a service at 10:5.
const seed = `upstream backend {
    server 127.0.0.1:8001 weight=10;
    server 127.0.0.1:8002 weight=5;
}

server {
    listen 80;
    location / {
        proxy_pass http://backend;
    }
}
`

// load validates a converted config as canaryd would: config.Load on a
// directory holding it.
func load(t *testing.T, toml string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("the converted config does not load: %v\n%s", err, toml)
	}
	return cfg
}

func TestSeedArticleConvertsToItsCanary(t *testing.T) {
	r, err := Convert("backend.conf", []byte(seed), Options{Canary: []string{"127.0.0.1:8002"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `# canaryd.toml converted from backend.conf by canaryctl from-nginx

[proxy]
# nginx: listen 80
listen = ":80"

# nginx: upstream backend { ... }, from proxy_pass http://backend

# nginx: server 127.0.0.1:8001 weight=10
[[upstream]]
name = "backend-1"
url = "http://127.0.0.1:8001"
weight = 10
role = "stable"

# nginx: server 127.0.0.1:8002 weight=5
[[upstream]]
name = "backend-2"
url = "http://127.0.0.1:8002"
weight = 5
role = "canary"                 # --canary 127.0.0.1:8002

[canary]
# Set version to the release the canary servers run (a tag, a build) before each
#   release: a new value re-arms the canary after a rollback.
version = "CHANGE-ME"
`
	if r.TOML != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.TOML, want)
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes = %q, want none: everything carried over", r.Notes)
	}

	cfg := load(t, r.TOML)
	if cfg.Proxy.Listen != ":80" || len(cfg.Upstreams) != 2 || cfg.Canary.Version != placeholder {
		t.Fatalf("loaded: listen %q, %d upstreams, version %q", cfg.Proxy.Listen, len(cfg.Upstreams), cfg.Canary.Version)
	}
	for i, want := range []struct {
		name, url string
		weight    int
		role      config.Role
	}{
		{"backend-1", "http://127.0.0.1:8001", 10, config.Stable},
		{"backend-2", "http://127.0.0.1:8002", 5, config.Canary},
	} {
		u := cfg.Upstreams[i]
		if u.Name != want.name || u.URL.String() != want.url || u.Weight != want.weight || u.Role != want.role {
			t.Errorf("upstream %d = %s %s %d %s, want %v", i, u.Name, u.URL, u.Weight, u.Role, want)
		}
	}
}

func TestTheHeaderIsOneLineHoweverLongThePath(t *testing.T) {
	path := "/etc/nginx/" + strings.Repeat("sites-available/", 6) + "backend.conf"
	r, err := Convert(path, []byte(seed), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# canaryd.toml converted from " + path + " by canaryctl from-nginx\n"; !strings.HasPrefix(r.TOML, want) {
		t.Errorf("the output starts:\n%s\nwant:\n%s", r.TOML[:len(want)], want)
	}
}

func TestWithoutCanaryAllAreStableAndTheTopSaysHowToNameIt(t *testing.T) {
	r, err := Convert("backend.conf", []byte(seed), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, r.TOML)
	if cfg.HasCanary() || strings.Contains(r.TOML, "\n[canary]\n") {
		t.Errorf("a canary without --canary:\n%s", r.TOML)
	}
	top := strings.SplitN(r.TOML, "[proxy]", 2)[0]
	if !strings.Contains(top, "--canary 127.0.0.1:8002") {
		t.Errorf("the top does not say how to name the canary:\n%s", top)
	}
}

// upstreamOf wraps upstream lines in the seed's shape.
func upstreamOf(lines string) string {
	return "upstream backend {\n" + lines + "\n}\nserver { listen 8080; location / { proxy_pass http://backend; } }\n"
}

// serverOf wraps server lines around the seed's upstream.
func serverOf(lines string) string {
	return "upstream backend { server 10.0.0.1:8001 weight=10; server 10.0.0.2:8002 weight=5; }\nserver {\n" + lines + "\n}\n"
}

// locationOf wraps location lines in the seed.
func locationOf(lines string) string {
	return serverOf("listen 8080;\nlocation / {\nproxy_pass http://backend;\n" + lines + "\n}")
}

func TestConversion(t *testing.T) {
	tests := []struct {
		name   string
		nginx  string
		canary []string
		want   []string // in the TOML, in this order
		not    []string // nowhere in the TOML
	}{
		// The upstream block.
		{"weight", upstreamOf("server 10.0.0.1:8001 weight=3;"), nil,
			[]string{"# nginx: server 10.0.0.1:8001 weight=3\n[[upstream]]\nname = \"backend-1\"\nurl = \"http://10.0.0.1:8001\"\nweight = 3\nrole = \"stable\"\n"}, nil},
		{"no weight is weight 1", upstreamOf("server 10.0.0.1:8001;"), nil, []string{"weight = 1\n"}, nil},
		{"no port is port 80", upstreamOf("server app.internal;"), nil, []string{`url = "http://app.internal:80"`}, nil},
		{"IPv6", upstreamOf("server [::1]:8081;"), nil, []string{`url = "http://[::1]:8081"`}, nil},
		{"max_fails and fail_timeout", upstreamOf("server 10.0.0.1:8001 max_fails=3 fail_timeout=30s;"), nil,
			[]string{"max_fails = 3\nfail_timeout = \"30s\"\n"}, nil},
		{"fail_timeout in minutes", upstreamOf("server 10.0.0.1:8001 fail_timeout=1m;"), nil, []string{`fail_timeout = "1m"`}, nil},
		{"fail_timeout as a bare number is seconds", upstreamOf("server 10.0.0.1:8001 fail_timeout=15;"), nil, []string{`fail_timeout = "15s"`}, nil},
		{"fail_timeout in milliseconds", upstreamOf("server 10.0.0.1:8001 fail_timeout=1500ms;"), nil, []string{`fail_timeout = "1500ms"`}, nil},
		{"fail_timeout=0 has no equivalent", upstreamOf("server 10.0.0.1:8001 fail_timeout=0;"), nil,
			[]string{"# nginx: fail_timeout=0: canaryd's fail_timeout must be more than zero"}, []string{"fail_timeout = "}},
		{"slow_start", upstreamOf("server 10.0.0.1:8001 slow_start=30s;"), nil, []string{`slow_start = "30s"`}, nil},
		{"down is weight 0", upstreamOf("server 10.0.0.1:8001;\nserver 10.0.0.2:8002 weight=5 down;"), nil,
			[]string{"name = \"backend-2\"\nurl = \"http://10.0.0.2:8002\"\nweight = 0                      # down: out of the rotation, as in nginx; weight 5 when it comes back\n"}, nil},
		{"backup is left out", upstreamOf("server 10.0.0.1:8001;\nserver 10.0.0.3:8003 backup;"), nil,
			[]string{"# nginx: server 10.0.0.3:8003 backup: left out: canaryd has no backup tier"}, []string{"10.0.0.3:8003\""}},
		{"a unix socket is left out", upstreamOf("server 10.0.0.1:8001;\nserver unix:/run/app.sock;"), nil,
			[]string{"# nginx: server unix:/run/app.sock: left out: canaryd dials TCP only"}, []string{`url = "unix`}},
		{"max_conns", upstreamOf("server 10.0.0.1:8001 max_conns=100;"), nil,
			[]string{"# nginx: max_conns=100: no per-upstream connection limit in canaryd"}, nil},
		{"resolve", upstreamOf("zone backend 64k;\nserver app.internal:8001 resolve;"), nil,
			[]string{"# nginx: zone backend 64k: shared memory for nginx's worker processes", "# nginx: resolve: canaryd resolves an upstream's name at each new connection"}, nil},
		{"an unknown server parameter", upstreamOf("server 10.0.0.1:8001 route=a;"), nil,
			[]string{"# nginx: route=a: no equivalent in canaryd"}, nil},
		{"keepalive", upstreamOf("server 10.0.0.1:8001;\nkeepalive 16;"), nil,
			[]string{"# nginx: keepalive 16: canaryd always keeps upstream connections alive; idle ones close\n#   after proxy.upstream_idle_timeout"}, nil},
		{"keepalive_timeout in the upstream", upstreamOf("server 10.0.0.1:8001;\nkeepalive_timeout 90s;"), nil,
			[]string{"# nginx: keepalive_timeout 90s (in upstream backend)\nupstream_idle_timeout = \"90s\""}, nil},
		{"least_conn", upstreamOf("least_conn;\nserver 10.0.0.1:8001;"), nil,
			[]string{"# nginx: least_conn: canaryd splits by weight (smooth weighted round-robin, nginx's\n#   default), not by open connections"}, nil},
		{"random", upstreamOf("random two;\nserver 10.0.0.1:8001;"), nil, []string{"# nginx: random two: canaryd splits by weight in turn"}, nil},
		{"ip_hash", upstreamOf("ip_hash;\nserver 10.0.0.1:8001;"), nil,
			[]string{"# nginx: ip_hash: canaryd has no server affinity; to keep one user on one version,\n#   set canary.sticky_header or canary.sticky_cookie"}, []string{"sticky_header ="}},
		{"hash on a header is sticky_header", upstreamOf("hash $http_x_user_id consistent;\nserver 10.0.0.1:8001;\nserver 10.0.0.2:8002;"), []string{"10.0.0.2:8002"},
			[]string{"[canary]\n", "# nginx: hash $http_x_user_id consistent\n", "sticky_header = \"X-User-ID\"\n"}, nil},
		{"hash on a cookie is sticky_cookie", upstreamOf("hash $cookie_uid;\nserver 10.0.0.1:8001;"), nil,
			[]string{"[canary]\n# nginx: hash $cookie_uid\n", "sticky_cookie = \"uid\"\n"}, nil},
		{"hash on anything else", upstreamOf("hash $remote_addr$request_uri;\nserver 10.0.0.1:8001;"), nil,
			[]string{"# nginx: hash $remote_addr$request_uri: canaryd has no server affinity"}, []string{"\n[canary]\n"}},
		{"sticky", upstreamOf("server 10.0.0.1:8001;\nsticky cookie srv_id expires=1h;"), nil,
			[]string{"# nginx: sticky cookie srv_id expires=1h: canaryd sets no cookie of its own"}, nil},
		{"an unknown upstream directive", upstreamOf("server 10.0.0.1:8001;\nntlm;"), nil, []string{"# nginx: ntlm: no equivalent in canaryd\n"}, nil},
		{"an upstream on admin.listen's port moves it", upstreamOf("server 127.0.0.1:9090;\nserver localhost:9091;"), nil,
			[]string{"[admin]\n# the status page's default address, 127.0.0.1:9090, is upstream backend-1's\nlisten = \"127.0.0.1:9092\"\n"}, nil},

		// The server block.
		{"listen a port", serverOf("listen 8080; location / { proxy_pass http://backend; }"), nil, []string{"# nginx: listen 8080\nlisten = \":8080\"\n"}, nil},
		{"listen an address", serverOf("listen 127.0.0.1:8080; location / { proxy_pass http://backend; }"), nil, []string{`listen = "127.0.0.1:8080"`}, nil},
		{"listen an address without port", serverOf("listen 127.0.0.1; location / { proxy_pass http://backend; }"), nil, []string{`listen = "127.0.0.1:80"`}, nil},
		{"listen *", serverOf("listen *:8080; location / { proxy_pass http://backend; }"), nil, []string{`listen = ":8080"`}, nil},
		{"listen IPv6", serverOf("listen [::]:80; location / { proxy_pass http://backend; }"), nil, []string{`listen = "[::]:80"`}, nil},
		{"listen IPv4 and IPv6 is one listen", serverOf("listen 80 default_server;\nlisten [::]:80 default_server;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{"# nginx: listen 80 default_server\n# nginx: listen [::]:80 default_server\n# canaryd's \":80\" takes IPv4 and IPv6 both\nlisten = \":80\"\n"}, nil},
		{"a second listen", serverOf("listen 80;\nlisten 8080;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{`listen = ":80"`, "# nginx: listen 8080: canaryd listens on one address, proxy.listen"}, nil},
		{"listen ssl beside a plain listen", serverOf("listen 80;\nlisten 443 ssl;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{`listen = ":80"`, "# nginx: listen 443 ssl: TLS: canaryd serves plain HTTP for now"}, []string{":443"}},
		{"listen ssl only", serverOf("listen 443 ssl;\nssl_certificate a.pem;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{"# nginx listens with TLS only: canaryd serves plain HTTP here, for the TLS terminator\n#   in front of it to proxy to\nlisten = \"127.0.0.1:8080\"\n",
				"# nginx: listen 443 ssl; ssl_certificate a.pem: TLS: canaryd serves plain HTTP for now"}, nil},
		{"listen on a unix socket only", serverOf("listen unix:/run/shop.sock;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{"# no listen canaryd can use: port 80, as nginx's default; set the address clients use\nlisten = \":80\"\n",
				"# nginx: listen unix:/run/shop.sock: canaryd listens on a TCP host:port"}, nil},
		{"listen with an unknown parameter", serverOf("listen 8080 reuseport;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{`listen = ":8080"`, "# nginx: listen 8080 reuseport (reuseport): no equivalent in canaryd"}, nil},
		{"no listen is port 80", serverOf("location / { proxy_pass http://backend; }"), nil,
			[]string{"# nginx: a server without listen listens on port 80\nlisten = \":80\"\n"}, nil},
		{"server_name", serverOf("listen 8080; server_name example.com;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{"# nginx: server_name example.com: canaryd answers every Host on proxy.listen"}, nil},
		{"another location", serverOf("listen 8080;\nlocation / { proxy_pass http://backend; }\nlocation /static/ { root /srv; }"), nil,
			[]string{"# nginx: location /static/ { ... }: one service per canaryd, and every path goes to its\n#   upstreams: run one canaryd per service, or keep nginx in front for path\n#   routing"}, nil},
		{"a location other than /", serverOf("listen 8080;\nlocation /api/ { proxy_pass http://backend; }"), nil,
			[]string{"# nginx: location /api/ { ... }: canaryd proxies every path, not only these", `url = "http://10.0.0.1:8001"`}, nil},
		{"an unknown server directive", serverOf("listen 8080; return 301 https://$host$request_uri;\nlocation / { proxy_pass http://backend; }"), nil,
			[]string{"# nginx: return 301 https://$host$request_uri: no equivalent in canaryd\n"}, nil},

		// The location and what it inherits.
		{"proxy_pass to host:port", serverOf("listen 8080; location / { proxy_pass http://127.0.0.1:3000; }"), nil,
			[]string{"# nginx: upstream backend { ... }: left out: one canaryd serves one service",
				"# nginx: proxy_pass http://127.0.0.1:3000: no upstream block, so one upstream of weight 1\n\n[[upstream]]\nname = \"127.0.0.1-3000\"\nurl = \"http://127.0.0.1:3000\"\nweight = 1\nrole = \"stable\"\n"}, nil},
		{"proxy_pass to IPv6", "server { listen 8080; location / { proxy_pass http://[2001:db8::5]:3000; } }", nil,
			[]string{`name = "2001-db8-5-3000"`, `url = "http://[2001:db8::5]:3000"`}, nil},
		{"an upstream name canaryd would not take", "upstream shop@v2 { server 10.0.0.1:1; }\nserver { listen 8080; location / { proxy_pass http://shop@v2; } }", nil,
			[]string{`name = "shop-v2-1"`}, nil},
		{"proxy_pass to a host", "server { listen 8080; location / { proxy_pass http://app.internal/; } }", nil,
			[]string{`name = "app.internal"`, `url = "http://app.internal:80"`}, []string{"in place of"}},
		{"proxy_pass over https", "upstream b { server 10.0.0.1:8443; }\nserver { listen 8080; location / { proxy_pass https://b; } }", nil,
			[]string{`url = "https://10.0.0.1:8443"`}, nil},
		{"proxy_pass with a path", serverOf("listen 8080; location / { proxy_pass http://backend/v1/; }"), nil,
			[]string{"# nginx: proxy_pass http://backend/v1/: nginx puts /v1/ in place of the location's path"}, nil},
		{"proxy_set_header for the client's address", locationOf("proxy_set_header X-Real-IP $remote_addr;\nproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"), nil,
			[]string{"# nginx: proxy_set_header X-Real-IP $remote_addr; proxy_set_header X-Forwarded-For\n#   $proxy_add_x_forwarded_for: canaryd sets X-Forwarded-For, X-Forwarded-Proto\n#   and X-Forwarded-Host itself"}, nil},
		{"proxy_set_header Host", locationOf("proxy_set_header Host $host;"), nil,
			[]string{"# nginx: proxy_set_header Host $host: canaryd passes the client's Host to the upstream as\n#   it came"}, nil},
		{"proxy_set_header of another header", locationOf("proxy_set_header X-Team blue;"), nil,
			[]string{"# nginx: proxy_set_header X-Team blue: no equivalent in canaryd\n"}, nil},
		{"proxy_connect_timeout", locationOf("proxy_connect_timeout 3s;"), nil, []string{"# nginx: proxy_connect_timeout 3s\nconnect_timeout = \"3s\"\n"}, nil},
		{"proxy_read_timeout", locationOf("proxy_read_timeout 2m;"), nil, []string{"# nginx: proxy_read_timeout 2m\n# header_timeout bounds each read from an upstream and each write to it, as proxy_read_timeout and proxy_send_timeout do\nheader_timeout = \"2m\"\n"}, nil},
		{"proxy_read_timeout and proxy_send_timeout", locationOf("proxy_send_timeout 10s;\nproxy_read_timeout 30s;"), nil,
			[]string{"# nginx: proxy_read_timeout 30s\n# nginx: proxy_send_timeout 10s\n# header_timeout bounds each read from an upstream and each write to it, as proxy_read_timeout and proxy_send_timeout do: the longer of the two\nheader_timeout = \"30s\"\n"}, nil},
		{"a timeout inherited from http, overridden in the location", "http {\nproxy_read_timeout 5s;\n" + locationOf("proxy_read_timeout 90s;") + "}", nil,
			[]string{`header_timeout = "90s"`}, []string{"5s"}},
		{"a timeout inherited from http", "http {\nproxy_connect_timeout 2s;\n" + locationOf("") + "}", nil, []string{`connect_timeout = "2s"`}, nil},
		{"keepalive_timeout", locationOf("keepalive_timeout 30s;"), nil, []string{"# nginx: keepalive_timeout 30s\nidle_timeout = \"30s\"\n"}, nil},
		{"keepalive_timeout 0", locationOf("keepalive_timeout 0;"), nil,
			[]string{"# nginx: keepalive_timeout 0: proxy.idle_timeout must be more than zero; left at its\n#   default"}, []string{"idle_timeout ="}},
		{"client_header_timeout", locationOf("client_header_timeout 20s;"), nil, []string{`client_header_timeout = "20s"`}, nil},
		{"client_body_timeout", locationOf("client_body_timeout 20s;"), nil, []string{"# nginx: client_body_timeout 20s: canaryd's proxy.idle_timeout bounds this wait too"}, nil},
		{"access_log", locationOf("access_log /var/log/nginx/app.log combined;"), nil,
			[]string{"# nginx: access_log /var/log/nginx/app.log combined\n# canaryd writes one journald entry per request (CLIENT, METHOD, PATH, STATUS,\n#   UPSTREAM, REQUEST_ID, DURATION_MS), not nginx's combined format to a file\naccess_log = true\n"}, nil},
		{"access_log off", locationOf("access_log off;"), nil, []string{"# nginx: access_log off\naccess_log = false\n"}, nil},
		{"include proxy_params", locationOf("include proxy_params;"), nil,
			[]string{"# nginx: include proxy_params: not read; Debian's proxy_params sets Host, X-Real-IP,"}, nil},
		{"an unknown location directive", locationOf("add_header X-Frame-Options \"DENY\";"), nil,
			[]string{"# nginx: add_header X-Frame-Options \"DENY\": no equivalent in canaryd\n"}, nil},
		{"a nested location", locationOf("location /x { return 404; }"), nil,
			[]string{"# nginx: location /x { ... }: one service per canaryd"}, nil},

		// Several services in one file.
		{"the upstream location / proxies to, of several", "upstream api { server 10.0.0.9:9000; }\n" + serverOf("listen 8080;\nlocation / { proxy_pass http://backend; }\nlocation /api/ { proxy_pass http://api; }"), nil,
			[]string{"# nginx: upstream api { ... }: left out: one canaryd serves one service; convert\n#   it with --upstream api for another canaryd\n", `url = "http://10.0.0.1:8001"`}, []string{"10.0.0.9"}},
		{"another server block", seed + "server { listen 8081; server_name api; location / { proxy_pass http://api; } }\nupstream api { server 10.0.0.9:9000; }\n", nil,
			[]string{"# nginx: server { listen 8081; server_name api; ... }: left out: one canaryd serves\n#   one service; it proxies to api: convert it with --upstream api for another\n#   canaryd\n"}, []string{"10.0.0.9"}},
		{"the TLS twin of the server block", seed + "server { listen 443 ssl; location / { proxy_pass http://backend; } }\n", nil,
			[]string{"# nginx: server { listen 443 ssl; ... }: the same service over TLS, which canaryd does\n#   not serve yet"}, nil},
		{"a whole nginx.conf", "worker_processes 1;\nevents { worker_connections 64; }\nhttp {\ninclude mime.types;\nsendfile on;\n" + seed + "}\n", nil,
			[]string{"# nginx: worker_processes 1; events { ... }: nginx's own process: canaryd is one\n#   process, run by systemd\n",
				`listen = ":80"`, "# nginx: include mime.types; sendfile on: for files nginx serves itself: canaryd only\n#   proxies\n"}, nil},
		{"only an upstream block", "upstream backend { server 10.0.0.1:8001; }", nil,
			[]string{"# no server block proxies to upstream backend: port 80, as nginx's default; set the\n#   address clients use\nlisten = \":80\"\n"}, nil},
		{"quoted arguments", "upstream \"backend\" { server '10.0.0.1:8001' \"weight=2\"; }\nserver { listen \"8080\"; location / { proxy_pass 'http://backend'; } }", nil,
			[]string{"# nginx: server '10.0.0.1:8001' \"weight=2\"\n", "weight = 2\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Convert("nginx.conf", []byte(tt.nginx), Options{Canary: tt.canary})
			if err != nil {
				t.Fatalf("%v\n%s", err, tt.nginx)
			}
			// Comments wrap where their words fall: compare them unwrapped.
			flat := unwrap(r.TOML)
			rest := flat
			for _, want := range tt.want {
				want = unwrap(want)
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("want (after what came before):\n%s\nin:\n%s", want, r.TOML)
				}
				rest = rest[i+len(want):]
			}
			for _, not := range tt.not {
				if strings.Contains(r.TOML, not) {
					t.Errorf("want no %q in:\n%s", not, r.TOML)
				}
			}
			load(t, r.TOML)
		})
	}
}

func unwrap(toml string) string { return strings.ReplaceAll(toml, "\n#   ", " ") }

// Every note is a comment of the output, and every "# nginx: …: why"
// comment is a note.
func TestNotesAreTheCommentsThatSayWhy(t *testing.T) {
	src := "events {}\nhttp {\ngzip on;\n" + upstreamOf("least_conn;\nserver 10.0.0.1:8001 max_conns=5;\nserver 10.0.0.2:8002 backup;") + "}"
	r, err := Convert("nginx.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nginx: events { ... }: nginx's own process: canaryd is one process, run by systemd",
		"nginx: gzip on: no equivalent in canaryd",
		"nginx: least_conn: canaryd splits by weight (smooth weighted round-robin, nginx's default), not by open connections",
		"nginx: max_conns=5: no per-upstream connection limit in canaryd (proxy.max_connections bounds client connections)",
		"nginx: server 10.0.0.2:8002 backup: left out: canaryd has no backup tier: every upstream takes its share at all times; on a rollback the stable upstreams take all traffic, and health_path keeps a dead one out of the rotation",
	}
	if strings.Join(r.Notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(r.Notes, "\n"), strings.Join(want, "\n"))
	}
	for _, n := range r.Notes {
		if !strings.Contains(unwrap(r.TOML), "# "+n+"\n") {
			t.Errorf("note %q is not a comment of:\n%s", n, r.TOML)
		}
	}
}

func TestCanaryMatchesTheAddressAsWrittenOrNormalized(t *testing.T) {
	src := upstreamOf("server 10.0.0.1:8001;\nserver app-v2.internal;\nserver [::1]:8003;")
	for _, tt := range []struct{ canary, name string }{
		{"app-v2.internal", "backend-2"},
		{"app-v2.internal:80", "backend-2"},
		{"APP-V2.internal", "backend-2"},
		{"http://app-v2.internal", "backend-2"},
		{"[::1]:8003", "backend-3"},
		{"10.0.0.1:8001", "backend-1"},
	} {
		r, err := Convert("nginx.conf", []byte(src), Options{Canary: []string{tt.canary}})
		if err != nil {
			t.Fatalf("--canary %s: %v", tt.canary, err)
		}
		cfg := load(t, r.TOML)
		for _, u := range cfg.Upstreams {
			if (u.Role == config.Canary) != (u.Name == tt.name) {
				t.Errorf("--canary %s: %s is %s", tt.canary, u.Name, u.Role)
			}
		}
	}
}

func TestSeveralCanaries(t *testing.T) {
	src := upstreamOf("server 10.0.0.1:8001 weight=4;\nserver 10.0.0.2:8002;\nserver 10.0.0.3:8003;")
	r, err := Convert("nginx.conf", []byte(src), Options{Canary: []string{"10.0.0.2:8002", "10.0.0.3:8003"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, r.TOML)
	roles := []config.Role{cfg.Upstreams[0].Role, cfg.Upstreams[1].Role, cfg.Upstreams[2].Role}
	if roles[0] != config.Stable || roles[1] != config.Canary || roles[2] != config.Canary {
		t.Errorf("roles %v", roles)
	}
}

func TestConversionErrors(t *testing.T) {
	tests := []struct {
		name     string
		nginx    string
		opts     Options
		upstream string
		want     string
	}{
		{"a --canary that matches no server", seed, Options{Canary: []string{"127.0.0.1:9999"}}, "",
			"backend.conf: --canary 127.0.0.1:9999 matches no server; the servers are 127.0.0.1:8001, 127.0.0.1:8002"},
		{"a --canary naming a backup server", upstreamOf("server 10.0.0.1:8001;\nserver 10.0.0.2:8002 backup;"), Options{Canary: []string{"10.0.0.2:8002"}}, "",
			"backend.conf: --canary 10.0.0.2:8002 names a backup server, which canaryd leaves out"},
		{"every server a canary", seed, Options{Canary: []string{"127.0.0.1:8001", "127.0.0.1:8002"}}, "",
			"backend.conf: no stable server is left: every server is a --canary or down, and canaryd needs a stable upstream taking traffic to roll back to"},
		{"the only stable server down", upstreamOf("server 10.0.0.1:8001 down;\nserver 10.0.0.2:8002;"), Options{Canary: []string{"10.0.0.2:8002"}}, "",
			"backend.conf: no stable server is left: every server is a --canary or down, and canaryd needs a stable upstream taking traffic to roll back to"},
		{"a weight canaryd does not take", upstreamOf("server 10.0.0.1:8001 weight=5000;"), Options{}, "",
			"backend.conf:2: server 10.0.0.1:8001: weight=5000: canaryd's weights go up to 1000; divide all the block's weights by a common factor"},
		{"a weight that is no number", upstreamOf("server 10.0.0.1:8001 weight=x;"), Options{}, "",
			"backend.conf:2: server 10.0.0.1:8001: weight=x: want a whole number, 1 or more"},
		{"a bad time", upstreamOf("server 10.0.0.1:8001 fail_timeout=10q;"), Options{}, "",
			"backend.conf:2: server 10.0.0.1:8001: fail_timeout=10q: not an nginx time (want e.g. 10s, 1m or 500ms)"},
		{"a bad timeout", locationOf("proxy_read_timeout soon;"), Options{}, "",
			`backend.conf:6: proxy_read_timeout: "soon" is not an nginx time (want e.g. 10s, 1m or 500ms)`},
		{"a bad server address", upstreamOf("server 10.0.0.1:http;"), Options{}, "",
			`backend.conf:2: server "10.0.0.1:http": not an address canaryd can use (want host:port, e.g. 10.0.0.2:8080)`},
		{"only unix sockets", upstreamOf("server unix:/a.sock;"), Options{}, "",
			"backend.conf: no server canaryd can use: unix sockets and backup servers have no equivalent (want a server at host:port)"},
		{"nothing to convert", debianNginxConf, Options{}, "",
			`backend.conf: nothing to convert: no upstream block and no location with proxy_pass (canaryd proxies to upstreams: want "upstream NAME { ... }" or "proxy_pass http://host:port"); they may be in a file this one includes (/etc/nginx/conf.d/*.conf): convert that one`},
		{"several upstreams and no location", "upstream a { server 10.0.0.1:1; }\nupstream b { server 10.0.0.2:2; }", Options{}, "",
			"backend.conf: several upstream blocks (a, b) and no location proxies to one: choose one with --upstream NAME"},
		{"an --upstream that is not there", seed, Options{Upstream: "api"}, "",
			"backend.conf: --upstream api: no upstream block of that name (the file has backend)"},
		{"a proxy_pass to a variable", "server { listen 80; location / { proxy_pass http://$pool; } }", Options{}, "",
			`backend.conf:1: "proxy_pass http://$pool" names its upstream with a variable: add the upstream blocks to this file and choose one with --upstream NAME`},
		{"a syntax error", "upstream backend {\n    server 10.0.0.1:8001\n}\n", Options{}, "",
			`backend.conf:3: unexpected "}": end "server 10.0.0.1:8001" with ";"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Convert("backend.conf", []byte(tt.nginx), tt.opts)
			if err == nil {
				t.Fatalf("no error; converted to:\n%s", r.TOML)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n %s\nwant:\n %s", err, tt.want)
			}
		})
	}
}

func TestUpstreamChoosesTheBlock(t *testing.T) {
	src := "upstream a { server 10.0.0.1:1; }\nupstream b { server 10.0.0.2:2; }\n" +
		"server { listen 8080; location / { proxy_pass http://a; } location /b/ { proxy_pass http://b; } }"
	for _, tt := range []struct{ upstream, url string }{{"", "http://10.0.0.1:1"}, {"a", "http://10.0.0.1:1"}, {"b", "http://10.0.0.2:2"}} {
		r, err := Convert("nginx.conf", []byte(src), Options{Upstream: tt.upstream})
		if err != nil {
			t.Fatal(err)
		}
		if cfg := load(t, r.TOML); cfg.Upstreams[0].URL.String() != tt.url {
			t.Errorf("--upstream %q: converted %s, want %s", tt.upstream, cfg.Upstreams[0].URL, tt.url)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"10", 10 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"1m", time.Minute, true},
		{"1m30s", 90 * time.Second, true},
		{"1m30", 90 * time.Second, true},
		{"1h 30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"1M", 30 * 24 * time.Hour, true},
		{"1y", 365 * 24 * time.Hour, true},
		{"0", 0, true},
		{"", 0, false},
		{"s", 0, false},
		{"10x", 0, false},
		{"30s1m", 0, false},
		{"1s1s", 0, false},
		{"1s5", 0, false},
		{"-1s", 0, false},
		{"99999y", 0, false},
	} {
		got, ok := parseTime(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHeaderNameOfAnNginxVariable(t *testing.T) {
	for in, want := range map[string]string{
		"x_user_id":     "X-User-ID",
		"user_agent":    "User-Agent",
		"x_real_ip":     "X-Real-IP",
		"authorization": "Authorization",
	} {
		if got := headerName(in); got != want {
			t.Errorf("headerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuoteIsTOML(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:     `"plain"`,
		`a"b\c`:     `"a\"b\\c"`,
		"tab\tnl\n": `"tab\tnl\n"`,
		"\x01\x7f":  `"\u0001\u007F"`,
		"é":         `"é"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
