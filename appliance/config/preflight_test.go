package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreflightRefusesWhatAStartCannotUse: a token file missing or empty,
// a listen host that does not resolve; with the token written and names
// that resolve, the same directory passes.
func TestPreflightRefusesWhatAStartCannotUse(t *testing.T) {
	stubLookup(t, map[string][]string{"pi.test": {"192.168.1.20"}})
	for _, tt := range []struct {
		name, admin, token, want string
	}{
		{"no token file", `listen = "0.0.0.0:9090"` + "\ntoken_file = \"admin.token\"", "", "admin.token_file: open "},
		{"an empty token", `listen = "0.0.0.0:9090"` + "\ntoken_file = \"admin.token\"", "\n", "is empty"},
		{"a name that does not resolve", `listen = "nowhere.test:9090"` + "\ntoken_file = \"admin.token\"", "s3cret", `admin.listen: "nowhere.test:9090": the host name "nowhere.test" does not resolve`},
		{"all there", `listen = "pi.test:9090"` + "\ntoken_file = \"admin.token\"", "s3cret", ""},
		{"no admin listener", `listen = ""`, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"canaryd.toml": minimal + "\n[admin]\n" + tt.admin + "\n"})
			if tt.token != "" {
				if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(tt.token), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Preflight()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Preflight = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Preflight = %v, want an error with %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("Preflight = %q, want one line", err)
			}
		})
	}
}

// TestLoadPathTakesOneFileAlone: a file is read as the only file of its
// directory, its relative paths beside it; the other files there do not
// count.
func TestLoadPathTakesOneFileAlone(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"pi.toml":    minimal + "[admin]\ntoken_file = \"admin.token\"\n",
		"other.toml": "this is not toml",
	})
	cfg, err := LoadPath(filepath.Join(dir, "pi.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Files) != 1 || cfg.Admin.TokenFile != filepath.Join(dir, "admin.token") {
		t.Errorf("files %v, token file %q; want pi.toml alone and the token beside it", cfg.Files, cfg.Admin.TokenFile)
	}
	if _, err := LoadPath(dir); err == nil || !strings.Contains(err.Error(), "other.toml") {
		t.Errorf("LoadPath of the directory = %v, want other.toml's error", err)
	}
}
