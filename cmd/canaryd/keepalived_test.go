package main

// keepalived in the fleet's network namespaces: two members share a
// virtual address by VRRP.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

// labVIP is the address two members share by VRRP.
const labVIP = "10.77.0.100"

// keepalived runs Debian's keepalived in m's namespace: VRRP for labVIP at
// priority, tracking canaryd with canaryctl status (two failures in a row
// give the address up), advertising every half second.
func (l *lab) keepalived(m *labMember, priority int) *exec.Cmd {
	l.t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		l.t.Fatal("the two-Pi test needs keepalived (apt-get install keepalived)")
	}
	dir := l.t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	text := fmt.Sprintf(`global_defs {
  router_id %s
  vrrp_version 3
  script_user root
}
vrrp_script canaryd {
  script "%s -socket %s status"
  interval 1
  timeout 1
  fall 2
  rise 1
}
vrrp_instance canary {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 0.5
  virtual_ipaddress {
    %s/24
  }
  track_script {
    canaryd
  }
}
`, m.name, filepath.Join(bin, "canaryctl"), m.a.socket, priority, labVIP)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		l.t.Fatal(err)
	}
	cmd := m.ns.command("keepalived", "-n", "-l", "-D", "-f", conf, "-p", filepath.Join(dir, "k.pid"),
		"-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "checker.pid"))
	out := new(testkit.SyncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	l.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if l.t.Failed() {
			l.t.Logf("keepalived %s:\n%s", m.name, out)
		}
	})
	return cmd
}

// hasVIP reports whether labVIP is on m's link.
func (m *labMember) hasVIP() bool {
	out, err := m.ns.command("ip", "-br", "addr", "show", "dev", "eth0").Output()
	return err == nil && strings.Contains(string(out), labVIP+"/")
}
