package admin_test

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/admin/admintest"
)

func TestHostsAreTheListenersOwnNames(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(hostname, ".")
	tests := []struct {
		listen string
		host   string
		want   bool
	}{
		{"127.0.0.1:9090", "127.0.0.1:9090", true},
		{"127.0.0.1:9090", "127.0.0.1", true},
		{"127.0.0.1:9090", "127.0.0.53:9090", true}, // any loopback literal
		{"127.0.0.1:9090", "[::1]:9090", true},
		{"127.0.0.1:9090", "[::ffff:127.0.0.1]:9090", true},
		{"127.0.0.1:9090", "localhost:9090", true},
		{"127.0.0.1:9090", "LocalHost.:9090", true},
		{"127.0.0.1:9090", hostname + ":9090", true},
		{"127.0.0.1:9090", short + ".local:9090", true},
		{"127.0.0.1:9090", "pi.example.lan:9090", true}, // admin.hosts
		{"127.0.0.1:9090", "PI.example.lan", true},
		{"192.168.1.20:9090", "192.168.1.20:9090", true}, // the listen address's host
		{"pi.lan:9090", "pi.lan:9090", true},
		{"127.0.0.1:9090", "evil.example", false},
		{"127.0.0.1:9090", "evil.example:9090", false},
		{"127.0.0.1:9090", "localhost.evil.example", false},
		{"127.0.0.1:9090", "192.168.1.20:9090", false}, // not an address it listens on
		{"127.0.0.1:9090", "192.0.2.1:9090", false},
		{"0.0.0.0:9090", "192.0.2.1:9090", false}, // TEST-NET: no interface has it
		{"[::]:9090", "[2001:db8::1]:9090", false},
		{"127.0.0.1:9090", "", false},
		{"127.0.0.1:9090", "a b", false},
	}
	for _, tt := range tests {
		h := admin.NewHosts(tt.listen, []string{"pi.example.lan"})
		if got := h.Allows(tt.host); got != tt.want {
			t.Errorf("listen %s: Allows(%q) = %v, want %v", tt.listen, tt.host, got, tt.want)
		}
	}
}

// TestHostsOnEveryInterfaceAreTheInterfacesAddresses: on 0.0.0.0 or ::, a
// browser pointed at any of the machine's addresses is answered.
func TestHostsOnEveryInterfaceAreTheInterfacesAddresses(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		host := net.JoinHostPort(n.IP.String(), "9090")
		for _, listen := range []string{"0.0.0.0:9090", "[::]:9090", ":9090"} {
			if !admin.NewHosts(listen, nil).Allows(host) {
				t.Errorf("listen %s: Allows(%q) = false, want true: it is an interface's address", listen, host)
			}
		}
		if admin.NewHosts("127.0.0.1:9090", nil).Allows(host) {
			t.Errorf("listen 127.0.0.1:9090: Allows(%q) = true, want false: it listens on loopback only", host)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("this machine has no address but loopback and link-local")
	}
}

// TestRebindingIsRefused: a page on evil.example whose name resolves to
// the Pi (DNS rebinding) sends Host and Origin evil.example; it is refused
// before anything happens, even without a token.
func TestRebindingIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		host   string
		origin string
		want   int
	}{
		{"resume from a rebound page", "POST", "/v1/resume", "evil.example:9090", "http://evil.example:9090", 421},
		{"rollback from a rebound page", "POST", "/v1/rollback", "evil.example", "http://evil.example", 421},
		{"reading the status from a rebound page", "GET", "/v1/status", "evil.example:9090", "", 421},
		{"an unknown path from a rebound page", "GET", "/nope", "evil.example:9090", "", 421},
		{"a known Host with a foreign Origin", "POST", "/v1/resume", "127.0.0.1:9090", "http://evil.example", 403},
		{"a known Host with a null Origin", "POST", "/v1/resume", "127.0.0.1:9090", "null", 403},
		{"the page itself", "POST", "/v1/resume", "127.0.0.1:9090", "http://127.0.0.1:9090", 200},
		{"a name from admin.hosts", "POST", "/v1/resume", "pi.example.lan:9090", "http://pi.example.lan:9090", 200},
		{"curl", "POST", "/v1/resume", "localhost:9090", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl := admintest.NewController(admintest.Canary())
			h := admin.NewHandler(ctl, admin.HandlerOptions{Cause: "api", Hosts: admin.NewHosts("127.0.0.1:9090", []string{"pi.example.lan"})})
			header := map[string]string{}
			if tt.origin != "" {
				header["Origin"] = tt.origin
			}
			code, reason, _ := requestTo(t, h, tt.method, tt.target, tt.host, header)
			if code != tt.want {
				t.Errorf("status = %d (%s), want %d", code, reason, tt.want)
			}
			if code != 200 && len(ctl.Calls()) != 0 {
				t.Errorf("refused request still called %q", ctl.Calls())
			}
			if code == 421 && !strings.Contains(reason, "[admin] hosts") {
				t.Errorf("421 reason %q does not say what to do", reason)
			}
		})
	}
}
