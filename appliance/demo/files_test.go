package demo

import (
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
)

func TestSetAddressesChangesOnlyTheAddresses(t *testing.T) {
	urls := map[string]string{"pong-v1": "http://127.0.0.1:41000", "pong-v2": "http://127.0.0.1:41001"}
	admin := map[string]string{"socket": "/run/user/1000/canaryd-demo/admin.sock", "listen": "127.0.0.1:0"}
	tests := []struct {
		name, in, want string
	}{
		{
			name: "the user's weights, keys and comments stay",
			in: `# mine
[admin]
socket = "/old.sock"   # a comment
listen = '127.0.0.1:9090'

[[upstream]]
name = "pong-v1"
url = "http://127.0.0.1:8001"  # where it was
weight = 3
health_path = "/ping"
`,
			want: `# mine
[admin]
socket = "/run/user/1000/canaryd-demo/admin.sock"   # a comment
listen = "127.0.0.1:0"

[[upstream]]
name = "pong-v1"
url = "http://127.0.0.1:41000"  # where it was
weight = 3
health_path = "/ping"
`,
		},
		{
			name: "a name after the url, and an upstream of the user's own",
			in: `[[ upstream ]]
url="http://127.0.0.1:8002"
name = 'pong-v2'

[[upstream]]
name = "mine"
url = "http://127.0.0.1:8001"
`,
			want: `[[ upstream ]]
url="http://127.0.0.1:41001"
name = 'pong-v2'

[[upstream]]
name = "mine"
url = "http://127.0.0.1:8001"

[admin]
listen = "127.0.0.1:0"
socket = "/run/user/1000/canaryd-demo/admin.sock"
`,
		},
		{
			name: "keys the user removed come back",
			in: `[admin] # the socket was here
[[upstream]]
name = "pong-v1"
weight = 10
`,
			want: `[admin] # the socket was here
listen = "127.0.0.1:0"
socket = "/run/user/1000/canaryd-demo/admin.sock"
[[upstream]]
url = "http://127.0.0.1:41000"
name = "pong-v1"
weight = 10
`,
		},
		{
			name: "a url in a comment or another table is not the upstream's",
			in: `[[upstream]]
name = "pong-v1"
# url = "http://example.com"
url = "http://127.0.0.1:8001"
[proxy]
url = "not an upstream's"
`,
			want: `[[upstream]]
name = "pong-v1"
# url = "http://example.com"
url = "http://127.0.0.1:41000"
[proxy]
url = "not an upstream's"

[admin]
listen = "127.0.0.1:0"
socket = "/run/user/1000/canaryd-demo/admin.sock"
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := setAddresses(tt.in, urls, admin); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestFilesAreAValidConfigDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, text := range Files("/run/user/1000/canaryd-demo/admin.sock") {
		writeFile(t, dir, name, text)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxy.Listen != "127.0.0.1:8080" || cfg.Admin.Listen != AdminListen ||
		cfg.Admin.Socket != "/run/user/1000/canaryd-demo/admin.sock" || cfg.Canary.Version != "pong-v2" {
		t.Errorf("proxy.listen %q, admin.listen %q, admin.socket %q, canary.version %q; want the contract's 127.0.0.1:8080, %s, the socket given, pong-v2",
			cfg.Proxy.Listen, cfg.Admin.Listen, cfg.Admin.Socket, cfg.Canary.Version, AdminListen)
	}
	if len(cfg.Upstreams) != len(Backends) {
		t.Fatalf("%d upstreams, want the %d backends", len(cfg.Upstreams), len(Backends))
	}
	for i, b := range Backends {
		u := cfg.Upstreams[i]
		if u.Name != b.Name || u.URL.Host != b.Listen || u.Weight != b.Weight || string(u.Role) != b.Role {
			t.Errorf("upstream %d: %s %s weight %d %s, want %s %s weight %d %s", i, u.Name, u.URL.Host, u.Weight, u.Role,
				b.Name, b.Listen, b.Weight, b.Role)
		}
	}
}
