package admin_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

func TestListenUnixCreatesTheDirAndAGroupSocket(t *testing.T) {
	path := filepath.Join(testkit.SocketDir(t), "run", "admin.sock")
	ln, _, err := admin.ListenUnix(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("%s is %v, want a socket", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode = %o, want 660", perm)
	}
}

// TestListenUnixGivesTheSocketToItsGroup: members of admin.socket_group
// may connect; a group that does not exist leaves the process's.
func TestListenUnixGivesTheSocketToItsGroup(t *testing.T) {
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skipf("no group nogroup to give the socket to: %v", err)
	}
	if os.Geteuid() != 0 && !slices.Contains(must(os.Getgroups()), atoi(t, g.Gid)) {
		t.Skip("only root or a member may give a file to nogroup")
	}
	for _, tt := range []struct {
		group string
		gid   int
	}{
		{"nogroup", atoi(t, g.Gid)},
		{"no-such-group-for-canaryd", os.Getegid()},
		{"", os.Getegid()},
	} {
		path := filepath.Join(testkit.SocketDir(t), "admin.sock")
		ln, warning, err := admin.ListenUnix(path, tt.group)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if gid := int(fi.Sys().(*syscall.Stat_t).Gid); gid != tt.gid || fi.Mode().Perm() != 0o660 || warning != "" {
			t.Errorf("group %q: socket gid %d, mode %o, warning %q; want gid %d, mode 660, no warning", tt.group, gid, fi.Mode().Perm(), warning, tt.gid)
		}
		ln.Close()
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClosingTheListenerRemovesTheSocket(t *testing.T) {
	path := filepath.Join(testkit.SocketDir(t), "admin.sock")
	ln, _, err := admin.ListenUnix(path, "")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, Lstat(%s) = %v, want not exist", path, err)
	}
}

func TestListenUnixReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(testkit.SocketDir(t), "admin.sock")
	// A daemon killed with SIGKILL leaves its socket file behind.
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()

	ln, _, err := admin.ListenUnix(path, "")
	if err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	defer ln.Close()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the new socket does not answer: %v", err)
	}
	conn.Close()
}

func TestListenUnixRefusesALiveSocket(t *testing.T) {
	path := filepath.Join(testkit.SocketDir(t), "admin.sock")
	first, _, err := admin.ListenUnix(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	second, _, err := admin.ListenUnix(path, "")
	if err == nil {
		second.Close()
		t.Fatal("a second ListenUnix on a live socket succeeded")
	}
	if want := "another canaryd is already serving " + path; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if conn, err := net.Dial("unix", path); err != nil {
		t.Errorf("the first daemon lost its socket: %v", err)
	} else {
		conn.Close()
	}
}

func TestListenUnixLeavesOtherFilesAlone(t *testing.T) {
	path := filepath.Join(testkit.SocketDir(t), "admin.sock")
	if err := os.WriteFile(path, []byte("not a socket"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, _, err := admin.ListenUnix(path, "")
	if err == nil {
		ln.Close()
		t.Fatal("ListenUnix replaced a regular file")
	}
	if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("err = %q, want it to say the file is not a socket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Errorf("the file was changed to %q", b)
	}
}

func TestClientReportsAnUnreachableDaemon(t *testing.T) {
	stale := filepath.Join(testkit.SocketDir(t), "admin.sock")
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()

	tests := []struct {
		name, socket, reason string
	}{
		{"no socket", filepath.Join(testkit.SocketDir(t), "admin.sock"), "no such file or directory"},
		{"nothing listening", stale, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.NewClient(tt.socket).Status(context.Background())
			if !errors.Is(err, admin.ErrUnreachable) {
				t.Fatalf("err = %v, want ErrUnreachable", err)
			}
			if want := "cannot reach canaryd at " + tt.socket + ": " + tt.reason; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}
