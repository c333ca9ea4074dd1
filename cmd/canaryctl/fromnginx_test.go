package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/config"
)

const seedNginx = `upstream backend {
    server 127.0.0.1:8001 weight=10;
    server 127.0.0.1:8002 weight=5;
}
server {
    listen 80;
    location / { proxy_pass http://backend; }
}
`

// inDir writes files into a new directory and makes it the working one.
func inDir(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

// loadTOML loads a config as canaryd would, from a directory holding it.
func loadTOML(t *testing.T, toml string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("the output does not load: %v\n%s", err, toml)
	}
	return cfg
}

func TestFromNginxPrintsAConfigThatLoads(t *testing.T) {
	inDir(t, map[string]string{"backend.conf": seedNginx})
	for _, args := range [][]string{
		{"from-nginx", "backend.conf", "--canary", "127.0.0.1:8002"},
		{"from-nginx", "--canary", "127.0.0.1:8002", "backend.conf"},
		{"from-nginx", "-canary=127.0.0.1:8002", "backend.conf"},
	} {
		// No daemon: the socket leads nowhere.
		r := canaryctl(map[string]string{"CANARYD_SOCKET": "/nonexistent/admin.sock"}, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "# canaryd.toml converted from backend.conf by canaryctl from-nginx\n") {
			t.Errorf("%q: the output starts with %q", args, strings.SplitN(r.stdout, "\n", 2)[0])
		}
		cfg := loadTOML(t, r.stdout)
		if !cfg.HasCanary() || cfg.Upstreams[1].Role != config.Canary || cfg.Upstreams[1].Weight != 5 {
			t.Errorf("%q: upstreams %+v", args, cfg.Upstreams)
		}
	}
}

func TestFromNginxReadsStdin(t *testing.T) {
	stdin = strings.NewReader(seedNginx)
	t.Cleanup(func() { stdin = os.Stdin })
	r := canaryctl(nil, "from-nginx", "-")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "# canaryd.toml converted from stdin by canaryctl from-nginx\n") {
		t.Errorf("output:\n%s", r.stdout)
	}
	if cfg := loadTOML(t, r.stdout); cfg.HasCanary() {
		t.Errorf("a canary without --canary")
	}
}

// What did not carry over is in the comments; stderr says so in one line,
// for whoever redirected stdout to a file.
func TestFromNginxSaysWhenSomethingDidNotCarryOver(t *testing.T) {
	inDir(t, map[string]string{"nginx.conf": strings.Replace(seedNginx, "weight=5;", "weight=5;\n    server 127.0.0.1:8003 backup;", 1)})
	r := canaryctl(nil, "from-nginx", "nginx.conf")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	oneLine(t, "stderr", r.stderr, `canaryctl from-nginx: not everything carried over as it was: the "# nginx:" comments say what and why`)
	if !strings.Contains(r.stdout, "# nginx: server 127.0.0.1:8003 backup: left out:") {
		t.Errorf("no comment on the backup server:\n%s", r.stdout)
	}
}

func TestFromNginxFailuresAreOneLine(t *testing.T) {
	inDir(t, map[string]string{
		"backend.conf": seedNginx,
		"broken.conf":  "upstream backend {\n    server 127.0.0.1:8001\n}\n",
	})
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"a missing file", []string{"missing.conf"}, "canaryctl: missing.conf: no such file or directory\n"},
		{"a parse error", []string{"broken.conf"}, "canaryctl: broken.conf:3: unexpected \"}\": end \"server 127.0.0.1:8001\" with \";\"\n"},
		{"an unknown --canary", []string{"backend.conf", "--canary", "10.0.0.9:80"},
			"canaryctl: backend.conf: --canary 10.0.0.9:80 matches no server; the servers are 127.0.0.1:8001, 127.0.0.1:8002\n"},
		{"no file", nil, "canaryctl from-nginx: want 1 argument(s), got 0 (usage: canaryctl from-nginx FILE [--canary ADDR]... [--upstream NAME])\n"},
		{"a --canary without its address", []string{"backend.conf", "--canary"}, "canaryctl from-nginx: flag needs an argument: -canary (usage: canaryctl from-nginx FILE [--canary ADDR]... [--upstream NAME])\n"},
		{"a config that would not load", []string{"-"}, "canaryctl: the converted config would not load: canaryd.toml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An upstream on canaryd's own listen address: a loop.
			stdin = strings.NewReader("upstream b { server 127.0.0.1; }\nserver { listen 80; location / { proxy_pass http://b; } }")
			t.Cleanup(func() { stdin = os.Stdin })
			r := canaryctl(nil, append([]string{"from-nginx"}, tt.args...)...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
			}
			oneLine(t, "stderr", r.stderr, strings.TrimSuffix(tt.stderr, "\n"))
			if strings.HasSuffix(tt.stderr, "\n") && r.stderr != tt.stderr {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.stderr)
			}
		})
	}
}

// docExample is one worked example of docs/nginx.md: an nginx file, the
// command line that converts it and what the command prints.
type docExample struct {
	nginx, command, toml string
}

// fence matches a fenced block of docs/nginx.md with its info string.
var fence = regexp.MustCompile("(?ms)^```(\\w*)\\n(.*?)^```\\n")

func docExamples(t *testing.T) []docExample {
	t.Helper()
	doc, err := os.ReadFile("../../docs/nginx.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples []docExample
	var cur docExample
	for _, m := range fence.FindAllStringSubmatch(string(doc), -1) {
		switch lang, body := m[1], m[2]; lang {
		case "nginx":
			cur = docExample{nginx: body}
		case "console":
			if cur.nginx != "" {
				cur.command = strings.TrimSpace(strings.TrimPrefix(body, "$ "))
			}
		case "toml":
			if cur.command != "" {
				cur.toml = body
				examples = append(examples, cur)
			}
			cur = docExample{}
		}
	}
	return examples
}

func TestDocsNginxExamplesAreTheCommandsOutput(t *testing.T) {
	examples := docExamples(t)
	if len(examples) < 2 {
		t.Fatalf("docs/nginx.md has %d worked examples (nginx, console, toml blocks in turn), want 2", len(examples))
	}
	for _, ex := range examples {
		t.Run(ex.command, func(t *testing.T) {
			args := strings.Fields(ex.command)
			if len(args) < 3 || args[0] != "canaryctl" || args[1] != "from-nginx" {
				t.Fatalf("the command is %q, want canaryctl from-nginx FILE ...", ex.command)
			}
			file := args[2]
			inDir(t, map[string]string{file: ex.nginx})
			r := canaryctl(nil, args[1:]...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != ex.toml {
				t.Errorf("docs/nginx.md shows for %q:\n%s\nthe command prints:\n%s", ex.command, ex.toml, r.stdout)
			}
			loadTOML(t, r.stdout)
		})
	}
}
