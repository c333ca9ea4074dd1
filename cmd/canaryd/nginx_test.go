package main

// The routing contract: without steps and sticky keys, canaryd picks
// upstreams exactly as nginx's upstream module does with the same weights.
// This test runs the real nginx next to canaryd and compares them.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/internal/testkit"
)

func TestNginxCompatibility(t *testing.T) {
	integration(t)
	nginx := findNginx(t)
	// Weight 0 is nginx's "down": canaryd takes it out of rotation too.
	sets := [][]int{
		{10, 5},
		{5, 1, 1},
		{3, 2},
		{1, 1, 1, 1},
		{7, 3, 1},
		{2, 0, 3},
		{1, 2, 3, 4, 5},
		{100, 1},
	}
	const requests = 45
	for _, weights := range sets {
		t.Run(weightsName(weights), func(t *testing.T) {
			backends := make([]*testkit.Backend, len(weights))
			ups := make([]upstream, len(weights))
			for i, w := range weights {
				backends[i] = testkit.StartBackend(t, fmt.Sprintf("b%d", i+1))
				role := "canary"
				if i == 0 {
					role = "stable"
				}
				ups[i] = upstream{backends[i], w, role}
			}

			n := startNginx(t, nginx, backends, weights)
			want := sequence(t, n.addr, requests)
			n.stop()
			for i, w := range weights {
				if w == 0 && slices.Contains(want, backends[i].Name) {
					t.Fatalf("nginx sent requests to %s, which is down: %v", backends[i].Name, want)
				}
			}

			a := newAppliance(t)
			a.writeConfig(a.config("v2", ups...))
			p := a.start()
			got := sequence(t, a.listen, requests)
			p.stop()

			if !slices.Equal(got, want) {
				t.Errorf("weights %v, %d sequential requests:\nnginx   %v\ncanaryd %v", weights, requests, want, got)
			}
		})
	}
}

func weightsName(weights []int) string {
	s := make([]string, len(weights))
	for i, w := range weights {
		s[i] = strconv.Itoa(w)
	}
	return strings.Join(s, ",")
}

// findNginx returns the nginx binary, or skips the test without one unless
// CANARYPI_REQUIRE_NGINX=1 says it must run.
func findNginx(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("nginx"); err == nil {
		return path
	}
	for _, path := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	if os.Getenv("CANARYPI_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found, and CANARYPI_REQUIRE_NGINX=1 requires it")
	}
	t.Skip("nginx not found (set CANARYPI_REQUIRE_NGINX=1 to make this a failure)")
	return ""
}

// nginxProcess is a running nginx master and its one worker.
type nginxProcess struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNginx runs nginx in the foreground with everything under a
// temporary prefix, proxying to backends with weights, and returns once
// it accepts connections.
func startNginx(t *testing.T, nginx string, backends []*testkit.Backend, weights []int) *nginxProcess {
	t.Helper()
	dir := t.TempDir()
	var servers strings.Builder
	for i, b := range backends {
		if weights[i] == 0 {
			fmt.Fprintf(&servers, "        server %s down;\n", b.Addr())
		} else {
			fmt.Fprintf(&servers, "        server %s weight=%d;\n", b.Addr(), weights[i])
		}
	}
	addr := testkit.FreeAddr(t)
	conf := nginxConf(dir, fmt.Sprintf(`    upstream backends {
%s    }
    server {
        listen %s;
        location / { proxy_pass http://backends; }
    }
`, servers.String(), addr))
	return runNginx(t, nginx, dir, conf, addr)
}

// nginxConf is a whole nginx.conf around the http block's directives, with
// everything under dir and one worker: each worker has its own
// round-robin state.
func nginxConf(dir, http string) string {
	user := ""
	if os.Geteuid() == 0 {
		// Else the worker switches to nobody, who may not reach dir.
		user = "user root root;"
	}
	return fmt.Sprintf(`worker_processes 1;
%[1]s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s}
`, user, dir, http)
}

// runNginx writes conf to dir/nginx.conf and runs nginx on it in the
// foreground, with dir as its prefix; it returns once nginx accepts
// connections on addr.
func runNginx(t *testing.T, nginx, dir, conf, addr string) *nginxProcess {
	t.Helper()
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	n := &nginxProcess{t: t, addr: addr, done: make(chan struct{})}
	n.cmd = exec.Command(nginx, "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", confPath, "-g", "daemon off;")
	var out testkit.SyncBuffer
	n.cmd.Stdout, n.cmd.Stderr = &out, &out
	// Its own process group: if the master must be killed, the worker goes too.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx.conf:\n%s\nnginx output:\n%s\nerror.log:\n%s", conf, out.String(), log)
		}
	})

	// A bare connection, not a request: a request would move the
	// round-robin before the sequence is taken.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start: %s\n%s", out.String(), log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept connections on %s after 10s", addr)
		}
	}
}

// stop shuts nginx down; it may be called more than once.
func (n *nginxProcess) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
		n.t.Errorf("nginx did not stop within 10s of SIGTERM; killed it")
	}
}
