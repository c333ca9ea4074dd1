// Package demo is the seed article's two services, pong-v1 in production and
// pong-v2 the candidate, as built-in backends: inside canaryd -demo with a
// config and state directory of their own, or alone (canaryd -demo-backend)
// as units of an appliance's first boot, before the real services exist.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	Listen string // where canaryd -demo-backend serves it by default
}

// Backends are the seed demo's services. Their Listen addresses are the
// ones the packaged example config proxies to.
var Backends = []Backend{
	{Name: "pong-v1", Weight: 10, Role: "stable", Listen: "127.0.0.1:8001"},
	{Name: "pong-v2", Weight: 5, Role: "canary", Listen: "127.0.0.1:8002"},
}

// DefaultListen is the address a demo backend serves on when none is given:
// the Backends' own, else "" (the caller must choose one).
func DefaultListen(name string) string {
	for _, b := range Backends {
		if b.Name == name {
			return b.Listen
		}
	}
	return ""
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
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.Close()
			return nil, err
		}
		srv := NewServer(b.Name)
		d.servers = append(d.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "demo backend %s: %v\n", b.Name, err)
			}
		}()
		cfg += fmt.Sprintf("\n[[upstream]]\nname = %q\nurl = \"http://%s\"\nweight = %d\nrole = %q\n",
			b.Name, ln.Addr(), b.Weight, b.Role)
	}
	if err := os.WriteFile(filepath.Join(d.ConfigDir, "canaryd.toml"), []byte(cfg), 0o644); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
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

// NewServer is one demo backend: it answers as the seed's gin service,
// {"message":"NAME"} as JSON, on GET /ping and on every other path, and
// GET /status/CODE answers with that status, to try the error accounting.
func NewServer(name string) *http.Server {
	body, _ := json.Marshal(map[string]string{"message": name})
	answer := func(w http.ResponseWriter, code int) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		w.Write(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { answer(w, http.StatusOK) })
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "want /status/200 to /status/599", http.StatusBadRequest)
			return
		}
		answer(w, code)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// Serve runs one demo backend on addr until ctx ends.
func Serve(ctx context.Context, name, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := NewServer(name)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
