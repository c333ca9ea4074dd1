package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Preflight checks what a start needs beyond the config's text: the files
// it names can be read, and the host names it listens on resolve. canaryd
// runs it before it binds anything, and -check-config runs the same, so a
// directory that checks valid also starts. A reload does not: what it
// checks can only change with a restart.
func (c *Config) Preflight() error {
	if _, err := c.Admin.ReadToken(); err != nil {
		return err
	}
	for _, l := range []struct{ key, addr string }{{"proxy.listen", c.Proxy.Listen}, {"admin.listen", c.Admin.Listen}} {
		if err := resolves(l.addr); err != nil {
			return fmt.Errorf("%s: %q: %v", l.key, l.addr, err)
		}
	}
	return nil
}

// ReadToken reads admin.token_file: the secret a request on admin.listen
// must carry to change anything. It is "" when no token file is set.
func (a Admin) ReadToken() (string, error) {
	if a.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w: write a secret there (e.g. head -c 32 /dev/urandom | base64 > %s), or leave token_file out", err, a.TokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin.token_file %s is empty: write a secret there (e.g. head -c 32 /dev/urandom | base64 > %[1]s)", a.TokenFile)
	}
	return tok, nil
}

// resolves reports why the host of a listen address cannot be bound: a
// name that does not resolve. An address, or "" for every interface, is
// fine; an empty addr is a listener that is off.
func resolves(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if addr == "" || err != nil || host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if ips, err := lookupHost(ctx, host); err != nil || len(ips) == 0 {
		return fmt.Errorf("the host name %q does not resolve (use an address such as 127.0.0.1, or fix the name)", host)
	}
	return nil
}
