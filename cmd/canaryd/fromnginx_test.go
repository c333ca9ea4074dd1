package main

// canaryctl from-nginx, end to end: a real nginx.conf converted by the
// real canaryctl, checked by the real canaryd, and canaryd on the result
// picking the same backends as nginx on the original.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

func TestFromNginxPicksAsNginxDoes(t *testing.T) {
	integration(t)
	nginx := findNginx(t)
	tests := []struct {
		name string
		// upstream is the upstream block's body for backends v1, v2
		// (the canary), v3 and an address nobody listens on.
		upstream string
		comments []string // in the converted config
	}{
		{
			name: "the seed article",
			upstream: `        server {v1} weight=10;
        server {v2} weight=5;`,
		},
		{
			name: "failure settings, a backup, a down server, keepalive, least_conn",
			upstream: `        least_conn;
        server {v1} weight=10 max_fails=3 fail_timeout=30s;
        server {v2} weight=5 max_fails=2 fail_timeout=1m;
        server {v3} backup;
        server {nobody} weight=3 down;
        keepalive 8;`,
			comments: []string{
				"# nginx: least_conn: canaryd splits by weight",
				"# nginx: keepalive 8: canaryd always keeps upstream connections alive",
				"max_fails = 3\nfail_timeout = \"30s\"\n",
				"max_fails = 2\nfail_timeout = \"1m\"\n",
				"backup: left out: canaryd has no backup tier",
				"weight = 0                      # down: out of the rotation, as in nginx; weight 3 when it comes back\n",
			},
		},
	}
	const requests = 30
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v1, v2, v3 := testkit.StartBackend(t, "v1"), testkit.StartBackend(t, "v2"), testkit.StartBackend(t, "v3")
			upstream := strings.NewReplacer("{v1}", v1.Addr(), "{v2}", v2.Addr(), "{v3}", v3.Addr(), "{nobody}", testkit.FreeAddr(t)).Replace(tt.upstream)
			dir := t.TempDir()
			addr := testkit.FreeAddr(t)
			conf := nginxConf(dir, fmt.Sprintf(`    upstream backend {
%s
    }
    server {
        listen %s;
        location / {
            proxy_pass http://backend;
        }
    }
`, upstream, addr))
			if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}

			// Converted by canaryctl, checked by canaryd as it is.
			r := runBinary(t, "canaryctl", "from-nginx", filepath.Join(dir, "nginx.conf"), "--canary", v2.Addr())
			if r.code != 0 {
				t.Fatalf("canaryctl from-nginx: exit %d: %s", r.code, r.stderr)
			}
			converted := r.stdout
			if want := "# canaryd.toml converted from " + filepath.Join(dir, "nginx.conf") + " by canaryctl from-nginx\n"; !strings.HasPrefix(converted, want) {
				t.Errorf("the output starts %q, want %q", strings.SplitN(converted, "\n", 2)[0], want)
			}
			for _, c := range tt.comments {
				if !strings.Contains(converted, c) {
					t.Errorf("the converted config lacks %q:\n%s", c, converted)
				}
			}
			check := t.TempDir()
			if err := os.WriteFile(filepath.Join(check, "canaryd.toml"), []byte(converted), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := runBinary(t, "canaryd", "-check-config", check); r.code != 0 {
				t.Fatalf("canaryd -check-config: exit %d: %s%s\n%s", r.code, r.stdout, r.stderr, converted)
			}

			n := runNginx(t, nginx, dir, conf, addr)
			want := sequence(t, addr, requests)
			n.stop()

			// The appliance's own admin socket beside the converted file,
			// which sets no [admin] key; the proxy listens where nginx did.
			a := newAppliance(t)
			a.listen = addr
			a.writeConfig(converted)
			admin := fmt.Sprintf("[admin]\nsocket = %q\nlisten = \"\"\n", a.socket)
			if err := os.WriteFile(filepath.Join(a.configDir, "admin.toml"), []byte(admin), 0o644); err != nil {
				t.Fatal(err)
			}
			p := a.start()
			got := sequence(t, addr, requests)
			p.stop()

			if !slices.Equal(got, want) {
				t.Errorf("%d sequential requests:\nnginx   %v\ncanaryd %v\nconverted config:\n%s", requests, want, got, converted)
			}
			if seed := []string{"v1", "v2", "v1", "v1", "v2", "v1"}; !slices.Equal(want[:6], seed) {
				t.Errorf("nginx picked %v, want the seed's %v", want[:6], seed)
			}
			if v3.Hits() != 0 {
				t.Errorf("the backup server got %d requests", v3.Hits())
			}
		})
	}
}
