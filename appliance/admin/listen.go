package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ListenUnix listens on the unix socket at path for canaryctl. It creates
// the parent directory if needed and replaces a socket left behind by a
// canaryd that died, but refuses to take over one that still answers.
// The socket is mode 0660: its owner and group may drive the daemon.
// Closing the listener removes the socket file.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// Until the chmod the socket has the umask's mode; with the usual 022
	// that grants no one else write access, which connecting needs, so the
	// window opens nothing.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// removeStale removes the socket at path if nothing answers on it. Anything
// else at path (a live daemon, a regular file) is left alone and reported.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s exists and is not a socket; remove it or set [admin] socket", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("another canaryd is already serving %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// Not provably dead (no permission to connect, say): removing it
		// could cut off a running daemon from its operators.
		return fmt.Errorf("admin socket %s is in use or unusable: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket: removing the stale %s: %w", path, err)
	}
	return nil
}
