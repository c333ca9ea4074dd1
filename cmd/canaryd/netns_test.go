package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netns is a network namespace a test made, removed when the test ends.
// The test reaches into it from its own process: a listener or a
// connection made on a thread inside it belongs to it, whichever thread
// then uses it.
type netns struct {
	t    *testing.T
	name string
	f    *os.File
}

// newNetns makes the namespace name, with its loopback up.
func newNetns(t *testing.T, name string) *netns {
	t.Helper()
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n := &netns{t: t, name: name, f: f}
	n.ip("link", "set", "lo", "up")
	return n
}

// ipCmd runs ip with args and fails the test if it fails.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// ip runs ip with args in the namespace.
func (n *netns) ip(args ...string) {
	n.t.Helper()
	ipCmd(n.t, append([]string{"-n", n.name}, args...)...)
}

// command is name with args run inside the namespace.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// do runs fn on a thread inside the namespace. The thread is never given
// back: it ends with fn's goroutine, rather than serve others from inside.
func (n *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listen listens on addr inside the namespace.
func (n *netns) listen(addr string) net.Listener {
	n.t.Helper()
	var ln net.Listener
	if err := n.do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects to addr inside the namespace.
func (n *netns) dial(ctx context.Context, network, addr string) (c net.Conn, err error) {
	err = n.do(func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// netnsAvailable skips t unless the fleet's tests were asked for and this
// machine can make namespaces: root, ip and nats-server.
func netnsAvailable(t *testing.T) {
	t.Helper()
	integration(t)
	if !*fleetTests {
		t.Skip("the fleet's tests in network namespaces run with -fleet (make test-fleet)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the fleet's tests make network namespaces: run them as root")
	}
	for _, tool := range []string{"ip", "nats-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the fleet's tests need %s (apt-get install iproute2 nats-server)", tool)
		}
	}
}
