package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/nginxconf"
)

// stdin is what "from-nginx -" reads; tests replace it.
var stdin io.Reader = os.Stdin

// fromNginx is `canaryctl from-nginx FILE [--canary ADDR]...`: the
// canaryd.toml equivalent to an nginx config, on stdout. It works offline
// and asks no daemon.
func fromNginx() command {
	var opts nginxconf.Options
	return command{
		args:  "FILE [--canary ADDR]... [--upstream NAME]",
		help:  "print a canaryd.toml equivalent to an nginx config",
		nargs: 1,
		flags: func(fs *flag.FlagSet) {
			fs.Func("canary", "a canary server, by its `ADDR` in the nginx server line (repeatable)", func(addr string) error {
				opts.Canary = append(opts.Canary, addr)
				return nil
			})
			fs.StringVar(&opts.Upstream, "upstream", "", "the upstream block to convert (default: the one location / proxies to)")
		},
		run: func(_ context.Context, c *cli, args []string) error {
			name, src, err := readNginx(args[0])
			if err != nil {
				return err
			}
			r, err := nginxconf.Convert(name, src, opts)
			if err != nil {
				return err
			}
			if err := loads(r.TOML); err != nil {
				return fmt.Errorf("the converted config would not load: %v", err)
			}
			if _, err := io.WriteString(c.stdout, r.TOML); err != nil {
				return err
			}
			if len(r.Notes) > 0 {
				fmt.Fprintln(c.stderr, `canaryctl from-nginx: not everything carried over as it was: the "# nginx:" comments say what and why`)
			}
			return nil
		},
	}
}

// readNginx reads the nginx config at path, or stdin for "-", and names
// it for messages.
func readNginx(path string) (string, []byte, error) {
	if path == "-" {
		src, err := io.ReadAll(stdin)
		return "stdin", src, err
	}
	src, err := os.ReadFile(path)
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return "", nil, fmt.Errorf("%s: %v", path, pe.Err)
	}
	return path, src, err
}

// loads checks that a converted config loads as canaryd would load it.
func loads(toml string) error {
	dir, err := os.MkdirTemp("", "canaryctl-from-nginx-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "canaryd.toml"), []byte(toml), 0o600); err != nil {
		return err
	}
	_, err = config.Load(dir)
	return err
}
