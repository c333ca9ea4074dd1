package demo

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Place is the directory a user's demo has every run: its admin socket is
// there, so that an exported CANARYD_SOCKET stays right, and so are its
// config and state unless it keeps them in a directory of its own. It is
// $XDG_RUNTIME_DIR/canaryd-demo, else canaryd-demo-UID in the temporary
// directory (/tmp), which must then be the user's alone: anyone who could
// write there could put a socket of theirs in the demo's place.
func Place() (string, error) {
	if run := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(run) {
		dir := filepath.Join(run, "canaryd-demo")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		return dir, nil
	}
	dir := filepath.Join(os.TempDir(), "canaryd-demo-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is not a directory of yours alone (%v): remove it, or set XDG_RUNTIME_DIR", dir, fi.Mode())
	}
	return dir, nil
}

// checkFree refuses a socket that answers: another demo serves there, and
// taking its socket away would leave its user's canaryctl talking to the
// wrong daemon. A socket nobody answers on is a crashed demo's, which
// canaryd removes when it binds.
func checkFree(socket string) error {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return fmt.Errorf("another canaryd -demo is running: its socket %s answers; stop that one first (Ctrl-C where it runs)", socket)
}
