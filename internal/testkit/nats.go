package testkit

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// NATSServer runs Debian's nats-server with JetStream on a loopback port
// until the test ends, and returns its URL. Without nats-server the test is
// skipped, or fails when CANARYPI_REQUIRE_NATS is set (as CI sets it).
func NATSServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CANARYPI_REQUIRE_NATS") != "" {
			t.Fatal("nats-server is not installed (apt-get install nats-server)")
		}
		t.Skip("nats-server is not installed")
	}
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	// JetStream is up before nats-server listens for clients.
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !Within(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("nats-server on %s did not listen within 10 s", addr)
	}
	return "nats://" + addr
}
