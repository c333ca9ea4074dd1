// Package testkit is the helpers the repository's tests share: upstream
// backends on loopback, a bounded GET, waiting for a condition, short directories for unix
// sockets and a buffer a process may write while a test reads it. It is for
// tests only; production code never imports it.
package testkit

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond until it holds and fails the test if it does not
// within timeout, naming what it waited for. timeout bounds a hang; it is not
// a target, as the machines tests run on are shared.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// Within polls cond until it holds or timeout has passed, and reports
// whether it held: for a test whose failure message wants what cond saw
// last. It polls often at first and every 50 ms at most, so that a quick
// condition is seen at once and a costly one (a canaryctl run) does not
// take the machine.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
	return true
}

// SocketDir is a new directory for unix sockets, removed when the test
// ends. Its path is short on purpose: a socket's path must stay under about
// 108 bytes, which t.TempDir's long names can exceed.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FreeAddr is a loopback address with a port nobody listens on: a server
// may listen there, and connecting to it is refused at once. (Another
// process could take the port meanwhile; on loopback in a test, none does.)
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// SyncBuffer is a bytes.Buffer that goroutines and processes may write
// while a test reads it. Its zero value is empty and ready.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// client bounds every request a test sends with Get.
var client = &http.Client{Timeout: 10 * time.Second}

// Get sends GET url, fails the test if no answer comes within 10 s, and
// reads the whole answer.
func Get(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, body
}

// Datagrams listens on a new unix datagram socket until the test ends, as
// systemd listens at $NOTIFY_SOCKET, and returns the socket's path and the
// messages that arrive there, in order (the first 1000 not yet read).
func Datagrams(t testing.TB) (path string, msgs <-chan string) {
	t.Helper()
	path = filepath.Join(SocketDir(t), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			c <- string(buf[:n])
		}
	}()
	return path, c
}
