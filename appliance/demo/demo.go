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
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Demo is a running set of demo backends and the config directory that
// puts them behind canaryd.
type Demo struct {
	// Dir holds the config and the state; Temporary says whether Close
	// removes them.
	Dir       string
	ConfigDir string
	StateDir  string
	Temporary bool
	// Config is the file a user edits; the watcher applies an edit within
	// a second.
	Config string
	Socket string // the admin socket: canaryctl's way in
	// Addrs are where the backends serve, by name: their fault controls
	// (POST /demo/fault) are there, beside the proxy.
	Addrs map[string]string
	// Taken are the fixed addresses something else held at Start: the
	// demo serves elsewhere this time, and says so.
	Taken []Taken
	// AdminTaken says that AdminListen was held at Start: the status page
	// listens on a port canaryd picks.
	AdminTaken bool
	servers    []*http.Server
}

// Taken is a backend that could not have its usual address.
type Taken struct {
	Name   string
	Wanted string // its Backend's Listen
	Got    string // where it serves this time
}

// AdminListen is where the demo's status page listens when the port is
// free: the contract's example admin.listen, the same every run.
const AdminListen = "127.0.0.1:9090"

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

// Options say where a demo keeps its files.
type Options struct {
	// Place is the user's demo place (see Place): the admin socket, and,
	// unless Dir is set, the config and the state, written afresh at Start
	// and removed by Close.
	Place string
	// Dir, when set, holds the config and the state instead, kept across
	// runs: Start writes only what is missing and the addresses that
	// changed, Close removes nothing.
	Dir string
}

// Start starts the backends on loopback, at their usual addresses when
// those are free, and writes a config directory that puts them behind
// canaryd. It refuses when another demo serves on the place's socket.
func Start(opts Options) (*Demo, error) {
	d := &Demo{Socket: filepath.Join(opts.Place, "admin.sock"), Addrs: map[string]string{}}
	// Before anything is written: the config and the state may be the
	// running demo's.
	if err := checkFree(d.Socket); err != nil {
		return nil, err
	}
	d.Dir, d.Temporary = opts.Dir, opts.Dir == ""
	if d.Temporary {
		d.Dir = opts.Place
	}
	d.ConfigDir, d.StateDir = filepath.Join(d.Dir, "config"), filepath.Join(d.Dir, "state")
	d.Config = filepath.Join(d.ConfigDir, ConfigFile)
	if d.Temporary {
		// What a demo killed before its Close left behind: no demo runs
		// here now, and this one starts afresh.
		for _, dir := range []string{d.ConfigDir, d.StateDir} {
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
		}
	}
	if err := errors.Join(os.MkdirAll(d.ConfigDir, 0o755), os.MkdirAll(d.StateDir, 0o750)); err != nil {
		return nil, err
	}
	if err := d.listen(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.writeConfig(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// listen binds the backends, each at its Backend's Listen unless that is
// taken, starts them, and learns whether the status page's port is free.
func (d *Demo) listen() error {
	for _, b := range Backends {
		ln, taken, err := listenOr(b.Listen)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		d.Addrs[b.Name] = ln.Addr().String()
		if taken {
			d.Taken = append(d.Taken, Taken{Name: b.Name, Wanted: b.Listen, Got: d.Addrs[b.Name]})
		}
		srv := newServer(b.Name, &faults{})
		d.servers = append(d.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "demo backend %s: %v\n", b.Name, err)
			}
		}()
	}
	// canaryd binds the status page itself, from the config: this only
	// asks whether the port is free now.
	ln, taken, err := listenOr(AdminListen)
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	d.AdminTaken = taken
	return ln.Close()
}

// listenOr listens on addr, or on a free loopback port when addr is taken.
func listenOr(addr string) (ln net.Listener, taken bool, err error) {
	ln, err = net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		taken = true
	}
	return ln, taken, err
}

// Close stops the backends and, when the directory is temporary, removes
// the config and the state.
func (d *Demo) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range d.servers {
		s.Shutdown(ctx)
	}
	if !d.Temporary {
		return nil
	}
	return errors.Join(os.RemoveAll(d.ConfigDir), os.RemoveAll(d.StateDir))
}

// NewServer is one demo backend: it answers as the seed's gin service,
// {"message":"NAME"} as JSON, on GET /ping and on every other path, and
// GET /status/CODE answers with that status, to try the error accounting.
func NewServer(name string) *http.Server { return newServer(name, nil) }

// faults is what a backend of canaryd -demo is told to do wrong, so that a
// newcomer can watch the verdict: fail a share of its requests, answer
// more slowly. Its answers take a lognormal time around two milliseconds,
// as a real service's do, so that slower is something to see.
type faults struct {
	errors atomic.Uint64 // math.Float64bits of the share answered 503
	slower atomic.Uint64 // math.Float64bits of the latency's multiple; 0 is 1
}

// baseLatency is the median of a demo backend's answer time, and
// latencySpread the standard deviation of its log.
const (
	baseLatency   = 2 * time.Millisecond
	latencySpread = 0.5
)

// serve applies f to one request: it waits, and reports whether the
// request is one of those to fail.
func (f *faults) serve(r *http.Request) (fail bool) {
	slower := math.Float64frombits(f.slower.Load())
	d := time.Duration(float64(baseLatency) * max(slower, 1) * math.Exp(latencySpread*rand.NormFloat64()))
	select {
	case <-time.After(d):
	case <-r.Context().Done():
	}
	return rand.Float64() < math.Float64frombits(f.errors.Load())
}

// set is the handler of POST /demo/fault?errors=0.3&slower=4: the share of
// requests to fail and the multiple of the answer time, both back to none
// when left out.
func (f *faults) set(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		errs, slower := 0.0, 1.0
		var err error
		if v := r.URL.Query().Get("errors"); v != "" {
			if errs, err = strconv.ParseFloat(v, 64); err != nil || !(errs >= 0 && errs <= 1) {
				http.Error(w, "errors: want a share from 0 to 1, such as 0.3", http.StatusBadRequest)
				return
			}
		}
		if v := r.URL.Query().Get("slower"); v != "" {
			if slower, err = strconv.ParseFloat(v, 64); err != nil || !(slower >= 1 && slower <= 1000) {
				http.Error(w, "slower: want a multiple from 1 to 1000, such as 4", http.StatusBadRequest)
				return
			}
		}
		f.errors.Store(math.Float64bits(errs))
		f.slower.Store(math.Float64bits(slower))
		fmt.Fprintf(w, "%s: %g%% of requests answer 503, answers take %gx as long\n", name, 100*errs, slower)
	}
}

func newServer(name string, f *faults) *http.Server {
	body, _ := json.Marshal(map[string]string{"message": name})
	answer := func(w http.ResponseWriter, code int) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		w.Write(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if f != nil && f.serve(r) {
			answer(w, http.StatusServiceUnavailable)
			return
		}
		answer(w, http.StatusOK)
	})
	if f != nil {
		mux.HandleFunc("POST /demo/fault", f.set(name))
	}
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
