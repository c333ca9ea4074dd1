// Package demo is canaryd's -demo mode: the seed article's two services
// (pong-v1 in production, pong-v2 the candidate) as built-in backends, and a
// config and state directory for them in a temporary directory.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Demo is a running set of demo backends and their directories.
type Demo struct {
	Dir       string // the temporary directory holding everything below
	ConfigDir string
	StateDir  string
	Socket    string
	servers   []*http.Server
}

// Backend is one demo service.
type Backend struct {
	Name   string
	Weight int
	Role   string
}

// Backends are the seed demo's services.
var Backends = []Backend{
	{Name: "pong-v1", Weight: 10, Role: "stable"},
	{Name: "pong-v2", Weight: 5, Role: "canary"},
}

// Start starts the backends on loopback and writes a config that puts them
// behind a proxy on listen.
func Start(listen string) (*Demo, error) {
	dir, err := os.MkdirTemp("", "canaryd-demo-")
	if err != nil {
		return nil, err
	}
	d := &Demo{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "config"),
		StateDir:  filepath.Join(dir, "state"),
		Socket:    filepath.Join(dir, "admin.sock"),
	}
	if err := os.Mkdir(d.ConfigDir, 0o755); err != nil {
		d.Close()
		return nil, err
	}
	cfg := fmt.Sprintf(`# canaryd -demo: the seed's pong-v1 and pong-v2 at 10:5.
[proxy]
listen = %q

[admin]
socket = %q
listen = "127.0.0.1:0"

[canary]
version = "pong-v2"
`, listen, d.Socket)
	for _, b := range Backends {
		addr, err := d.serve(b.Name)
		if err != nil {
			d.Close()
			return nil, err
		}
		cfg += fmt.Sprintf("\n[[upstream]]\nname = %q\nurl = \"http://%s\"\nweight = %d\nrole = %q\n",
			b.Name, addr, b.Weight, b.Role)
	}
	if err := os.WriteFile(filepath.Join(d.ConfigDir, "canaryd.toml"), []byte(cfg), 0o644); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// serve starts one backend answering its name, and returns its address.
// GET /status/CODE answers with that status, to try the error accounting.
func (d *Demo) serve(name string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, name)
	})
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		if _, err := fmt.Sscan(r.PathValue("code"), &code); err != nil || code < 200 || code > 599 {
			http.Error(w, "want /status/200 to /status/599", http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintln(w, name)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.servers = append(d.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "demo backend %s: %v\n", name, err)
		}
	}()
	return ln.Addr().String(), nil
}

// Close stops the backends and removes the temporary directory.
func (d *Demo) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range d.servers {
		s.Shutdown(ctx)
	}
	return os.RemoveAll(d.Dir)
}
