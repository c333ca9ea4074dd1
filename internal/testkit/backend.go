package testkit

import (
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Server is an HTTP server on loopback that runs until the test ends and
// counts the connections it accepts and those that end (closed or
// hijacked).
type Server struct {
	*httptest.Server
	conns  atomic.Int64
	closed atomic.Int64
}

// Serve starts a Server for h; configure adjusts its http.Server before it
// starts.
func Serve(t testing.TB, h http.Handler, configure ...func(*http.Server)) *Server {
	t.Helper()
	s := &Server{Server: httptest.NewUnstartedServer(h)}
	for _, f := range configure {
		f(s.Config)
	}
	s.Config.ConnState = func(_ net.Conn, cs http.ConnState) {
		switch cs {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.Listener.Addr().String() }

// Conns counts the connections accepted so far.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Closed counts the connections that have ended so far.
func (s *Server) Closed() int64 { return s.closed.Load() }

// Backend is an upstream that answers every request with its name, and
// counts the requests.
type Backend struct {
	*Server
	Name string
	hits atomic.Int64
}

// Hits counts the requests that have arrived so far, answered or not.
func (b *Backend) Hits() int64 { return b.hits.Load() }

// An Option changes how a Backend answers.
type Option func(*answer)

type answer struct {
	status  int
	delay   time.Duration
	started chan<- struct{}
	// fail is the share of requests answered 503 at random; spread, when
	// not 0, makes the delay lognormal with delay as its median.
	fail   float64
	spread float64
}

// Status answers every request with code (the body is still the name), as
// a broken upstream would.
func Status(code int) Option { return func(a *answer) { a.status = code } }

// Delay holds every answer for d, or until the client hangs up, when the
// backend answers nothing.
func Delay(d time.Duration) Option { return func(a *answer) { a.delay = d } }

// Fail answers a share (0 to 1) of the requests, at random, with 503, as a
// flaky upstream does.
func Fail(share float64) Option { return func(a *answer) { a.fail = share } }

// Lognormal holds each answer for a lognormal time with median and spread
// (the standard deviation of its log), as a real service's latency varies.
func Lognormal(median time.Duration, spread float64) Option {
	return func(a *answer) { a.delay, a.spread = median, spread }
}

// Started sends on c as each request arrives, before any Delay, so that a
// test knows a request is in flight. A send that would block is dropped.
func Started(c chan<- struct{}) Option { return func(a *answer) { a.started = c } }

// StartBackend starts a Backend called name, answering 200 unless opts say
// otherwise, until the test ends.
func StartBackend(t testing.TB, name string, opts ...Option) *Backend {
	t.Helper()
	a := answer{status: http.StatusOK}
	for _, o := range opts {
		o(&a)
	}
	b := &Backend{Name: name}
	b.Server = Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if a.started != nil {
			select {
			case a.started <- struct{}{}:
			default:
			}
		}
		if delay := a.delay; delay > 0 {
			if a.spread > 0 {
				delay = time.Duration(float64(delay) * math.Exp(a.spread*rand.NormFloat64()))
			}
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if a.fail > 0 && rand.Float64() < a.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, name)
			return
		}
		w.WriteHeader(a.status)
		io.WriteString(w, name)
	}))
	return b
}
