package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// analyze finds systemd-analyze; CI installs it and sets
// CANARYPI_REQUIRE_SYSTEMD=1 so that a missing one fails instead of skipping.
func analyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CANARYPI_REQUIRE_SYSTEMD") == "1" {
			t.Fatal("systemd-analyze not found (apt-get install systemd)")
		}
		t.Skip("systemd-analyze not found")
	}
	return path
}

// unitForHost copies the unit to a temporary directory with ExecStart
// pointing at a freshly built canaryd, since verify checks the binary.
func unitForHost(t *testing.T) string {
	t.Helper()
	return unitsForHost(t, map[string]string{"canaryd.service": "canaryd.service"})["canaryd.service"]
}

// unitsForHost copies units (installed name: file here) to a temporary
// directory, with /usr/bin/canaryd replaced by a freshly built one.
func unitsForHost(t *testing.T, units map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "canaryd")
	build := exec.Command("go", "build", "-o", bin, "../cmd/canaryd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	paths := map[string]string{}
	for name, file := range units {
		unit, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		paths[name] = filepath.Join(dir, name)
		text := strings.ReplaceAll(string(unit), "/usr/bin/canaryd", bin)
		if err := os.WriteFile(paths[name], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func TestUnitVerifiesCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds canaryd")
	}
	sa := analyze(t)
	units := unitsForHost(t, map[string]string{
		"canaryd.service": "canaryd.service", "canaryd.socket": "canaryd.socket",
		// A template verifies as one of its instances.
		"canaryd-demo@pong-v1.service": "canaryd-demo@.service",
	})
	for _, unit := range units {
		out, err := exec.Command(sa, "verify", unit).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify %s: %v\n%s", filepath.Base(unit), err, out)
		}
	}
}

func TestUnitExposureScoreIsAtMost1Point8(t *testing.T) {
	if testing.Short() {
		t.Skip("builds canaryd")
	}
	sa := analyze(t)
	out, _ := exec.Command(sa, "security", "--offline=true", "--no-pager", unitForHost(t)).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", score)
	if score > 1.8 {
		t.Fatalf("exposure %.1f, want 1.8 or better:\n%s", score, out)
	}
}

func TestUnitHasTheServiceContract(t *testing.T) {
	unit, err := os.ReadFile("canaryd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"Type=notify", "WatchdogSec=", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
		"DynamicUser=yes", "Group=canaryctl", "SupplementaryGroups=gpio", "DeviceAllow=char-gpiochip rw",
		// canaryctl's group enters /run/canaryd and connects to the 0660 socket.
		"RuntimeDirectoryMode=0755", "UMask=0007",
		"StateDirectory=canaryd", "ConfigurationDirectory=canaryd", "RuntimeDirectory=canaryd",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"SystemCallFilter=@system-service",
	} {
		if !strings.Contains(string(unit), "\n"+line) {
			t.Errorf("canaryd.service lacks %q", line)
		}
	}
}
