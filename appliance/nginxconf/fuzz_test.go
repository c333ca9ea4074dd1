package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
)

// FuzzConvert feeds the converter any bytes: it never panics, an error is
// one line, and a config it converts loads, unless nginx's own config
// sends requests back to where it listens.
func FuzzConvert(f *testing.F) {
	for _, seed := range []string{
		seed, debianNginxConf,
		upstreamOf("least_conn; server 10.0.0.1:8001 weight=3 max_fails=2 fail_timeout=1m30s slow_start=20s; server [::1] backup; server unix:/a down; hash $cookie_u;"),
		serverOf("listen [::]:80; listen 80 ssl; location = / { proxy_pass https://10.0.0.5/x; } location / { proxy_pass http://backend; }"),
		"http { server { listen 8080; location / { proxy_pass http://[::1]:3000; } } }",
		"a \"b\\\"c\" 'd' ${e}} # f\n{",
		"upstream a { server; }\nserver { listen; location / { proxy_pass http://a; } }",
	} {
		f.Add(seed, "10.0.0.2:8002")
	}
	f.Fuzz(func(t *testing.T, src, canary string) {
		r, err := Convert("nginx.conf", []byte(src), Options{Canary: []string{canary}})
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error of more than one line: %q", msg)
			}
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), []byte(r.TOML), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(dir); err != nil && !strings.Contains(err.Error(), "is canaryd's own proxy.listen") {
			t.Fatalf("the converted config does not load: %v\n%s\nfrom:\n%s", err, r.TOML, src)
		}
	})
}
