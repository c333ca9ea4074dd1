package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ListenUnix listens on the unix socket at path for canaryctl. It creates
// the parent directory if needed and replaces a socket left behind by a
// canaryd that died, but refuses to take over one that still answers.
// The socket is mode 0660 and belongs to group, so that its members may
// drive the daemon; without that group, or without the right to give the
// socket to it, the socket keeps the process's group, and the warning says
// so: canaryd starts all the same. "" leaves the process's group.
// Closing the listener removes the socket file.
func ListenUnix(path, group string) (ln net.Listener, warning string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", socketError(err)
	}
	if err := removeStale(path); err != nil {
		return nil, "", err
	}
	if ln, err = net.Listen("unix", path); err != nil {
		return nil, "", socketError(err)
	}
	// The group before the mode: until the chmod the socket has the
	// umask's mode, which with the usual 022 or the unit's 007 grants no
	// one outside the process's own group write access, which connecting
	// needs, so the window opens nothing.
	if group != "" {
		warning = chgrp(path, group)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("admin socket: %w", err)
	}
	return ln, warning, nil
}

// socketError is why the socket could not be made, and what to do when
// it is a matter of permission: canaryd started by hand as a user, with
// the unit's /run/canaryd out of reach.
func socketError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("admin socket: %w: start canaryd from its unit (systemctl start canaryd) or as root, or set [admin] socket to a path you may write", err)
	}
	return fmt.Errorf("admin socket: %w", err)
}

// chgrp gives the socket at path to group, and says why it could not.
// A group that does not exist is no warning: outside the package (a demo,
// a developer's machine) there is none, and the process's group is right.
func chgrp(path, group string) string {
	g, err := user.LookupGroup(group)
	if err != nil {
		if _, unknown := errors.AsType[user.UnknownGroupError](err); unknown {
			return ""
		}
		return fmt.Sprintf("admin socket %s keeps the process's group: looking up group %s: %v", path, group, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Sprintf("admin socket %s keeps the process's group: group %s has gid %q", path, group, g.Gid)
	}
	// Under the unit the process's own group is the socket's already
	// (Group=canaryctl), and its system call filter refuses chown.
	if fi, err := os.Lstat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) == gid {
			return ""
		}
	}
	if err := os.Lchown(path, -1, gid); err != nil {
		return fmt.Sprintf("admin socket %s keeps the process's group: it cannot be given to group %s (%v); run canaryd with group %s (the unit's Group=)", path, group, errors.Unwrap(err), group)
	}
	return ""
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
