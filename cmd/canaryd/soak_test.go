package main

// The fault suite of issue 12 (make soak): one canaryd, started as
// canaryd.socket starts it, under a steady load of GETs and POSTs on
// loopback, while one class of fault after another is injected: config
// reloads, the canary backend killed, each stable instance killed, button
// presses and resumes, all of those together, and canaryd itself killed
// with SIGKILL. Every client error is charged to the fault class that was
// active when its request started; after each phase the state files are
// read back and canaryd's file descriptors, goroutines and memory are
// measured. `go test` runs the short form; `make soak` the long one.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

var (
	soakForm   = flag.String("soak", "short", "TestSoak's form: short (part of go test) or long (make soak)")
	soakReport = flag.String("soak.report", "", "TestSoak also writes its report to this file")
)

// soakPlan is how much of each fault one run injects, and for how long the
// load runs around them.
type soakPlan struct {
	reloads      int           // config rewrites, each followed by a reload
	canaryKills  int           // the canary backend killed and restarted
	stableRounds int           // rounds of killing each stable instance in turn
	presses      int           // button presses, each followed by a resume
	together     int           // rounds of reload, canary kill and press at once
	sigkills     int           // canaryd killed with SIGKILL and restarted
	quiet        time.Duration // the load alone, at the start and the end
	dwell        time.Duration // the load alone after each fault
	down         time.Duration // how long a killed backend stays down
	workers      int           // concurrent clients
	interval     time.Duration // each client's pace: one request per interval at most
}

var soakPlans = map[string]soakPlan{
	// A few of each, to keep every path in `go test`: about 20 s.
	"short": {reloads: 10, canaryKills: 2, stableRounds: 1, presses: 4, together: 2, sigkills: 2,
		quiet: time.Second, dwell: 100 * time.Millisecond, down: 200 * time.Millisecond,
		workers: 4, interval: 5 * time.Millisecond},
	// The counts of issue 12, with more load around them.
	"long": {reloads: 50, canaryKills: 10, stableRounds: 3, presses: 20, together: 10, sigkills: 5,
		quiet: 10 * time.Second, dwell: 500 * time.Millisecond, down: time.Second,
		workers: 6, interval: 2 * time.Millisecond},
}

// The soak's canary.version and incidents.keep.
const (
	soakVersion = "v2"
	soakKeep    = 8
)

// backendProc is one demo backend as its own process (`canaryd
// -demo-backend`), on a fixed address, so that killing it really refuses
// and resets connections and restarting it brings it back where it was.
type backendProc struct {
	name, addr string
	deaths     *deaths
	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{}
	stderr     testkit.SyncBuffer
}

// deaths is when a backend was last killed, and when it was reaped
// (unix ns), for the backends' kills shared.
type deaths struct{ killed, reaped atomic.Int64 }

// reapedBefore reports whether the latest kill had been reaped when a
// request started at start, and how long before.
func (d *deaths) reapedBefore(start time.Time) (time.Duration, bool) {
	k, r := d.killed.Load(), d.reaped.Load()
	if r == 0 || r < k || start.UnixNano() <= r {
		return 0, false
	}
	return start.Sub(time.Unix(0, r)), true
}

func startBackendProc(t *testing.T, name string, d *deaths) *backendProc {
	t.Helper()
	b := &backendProc{name: name, addr: testkit.FreeAddr(t), deaths: d}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.kill()
		if t.Failed() {
			t.Logf("backend %s stderr:\n%s", name, &b.stderr)
		}
	})
	return b
}

// start runs the backend and returns once it accepts connections.
func (b *backendProc) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cmd := exec.Command(filepath.Join(bin, "canaryd"), "-demo-backend", b.name, "-listen", b.addr)
	cmd.Env, cmd.Stderr = env(), &b.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("backend %s: %w", b.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.cmd, b.done = cmd, done
	up := testkit.Within(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !up {
		return fmt.Errorf("backend %s does not accept connections on %s after 10 s", b.name, b.addr)
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *backendProc) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.deaths.killed.Store(time.Now().UnixNano())
	b.cmd.Process.Kill()
	<-b.done
	b.deaths.reaped.Store(time.Now().UnixNano())
	b.cmd = nil
}

// restart kills the backend, leaves it down for down, and starts it again.
func (b *backendProc) restart(down time.Duration) error {
	b.kill()
	time.Sleep(down)
	return b.start()
}

// timedConn is a client connection that knows which canaryd process
// could have accepted it: how many canaryd processes had been killed and
// reaped when it was dialed.
type timedConn struct {
	net.Conn
	gen     int64
	dialed  time.Time
	readErr atomic.Pointer[string] // the error that ended it, as a read saw it
}

func (c *timedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		msg := err.Error()
		c.readErr.CompareAndSwap(nil, &msg)
	}
	return n, err
}

// phaseStats is what the clients saw while one fault class was active.
type phaseStats struct {
	gets, posts       atomic.Int64 // requests sent
	getErrs, postErrs atomic.Int64 // failed: a transport error, or not 200
	// Failures on a connection that a canaryd killed with SIGKILL had
	// (or could have had) open: they die with the process.
	getKilled, postKilled atomic.Int64
	postsAfterDeath       atomic.Int64 // failed POSTs sent after a killed backend was reaped
	retried               atomic.Int64 // requests the client's transport sent again on a new connection
	queued                atomic.Int64 // requests sent while canaryd was down, answered by its successor
	maxQueued             atomic.Int64 // the longest of those, in ms
	canaryWhileLatched    atomic.Int64 // answered by the canary after a rollback returned
	mu                    sync.Mutex
	samples               []string // the first failures
	retries               []string // the first requests the transport sent again
}

func (s *phaseStats) sample(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 5 {
		s.samples = append(s.samples, what)
	}
}

func (s *phaseStats) sampleRetry(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.retries) < 3 {
		s.retries = append(s.retries, what)
	}
}

// soakLoad is the steady load: a few clients, each sending GETs and POSTs
// in turn at a bounded pace, every request with a deadline and its own
// X-Request-Id.
type soakLoad struct {
	url    string
	canary string // the canary backend's name, as its answers carry it
	phase  atomic.Pointer[phaseStats]
	// SIGKILLs of canaryd sent, and killed processes reaped.
	killsSent, killsReaped atomic.Int64
	downSince              atomic.Int64 // unix ns since canaryd is down; 0 while it serves
	latchedSince           atomic.Int64 // unix ns since a rollback returned; 0 when not latched
	backendDeaths          *deaths
	sent                   atomic.Int64

	mu        sync.Mutex
	posts     map[string]string // POST request id → backend that answered ("" none)
	wg        sync.WaitGroup
	stop      chan struct{}
	paceEvery time.Duration
}

func startLoad(addr, canary string, plan soakPlan, first *phaseStats, backendDeaths *deaths) *soakLoad {
	l := &soakLoad{url: "http://" + addr + "/orders", canary: canary, posts: map[string]string{},
		stop: make(chan struct{}), paceEvery: plan.interval, backendDeaths: backendDeaths}
	l.phase.Store(first)
	for w := range plan.workers {
		l.wg.Add(1)
		go l.worker(w)
	}
	return l
}

// close stops the clients and waits for their last requests.
func (l *soakLoad) close() {
	close(l.stop)
	l.wg.Wait()
}

// maxSoakRequests bounds a run's load, whatever its pace.
const maxSoakRequests = 2_000_000

func (l *soakLoad) worker(w int) {
	defer l.wg.Done()
	var d net.Dialer
	tr := &http.Transport{
		MaxIdleConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			gen := l.killsReaped.Load()
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &timedConn{Conn: c, gen: gen, dialed: time.Now()}, nil
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 15 * time.Second, Transport: tr}
	for i := 0; l.sent.Add(1) <= maxSoakRequests; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		start := time.Now()
		l.one(c, fmt.Sprintf("soak-%d-%d", w, i), i%4 == 3)
		if rest := l.paceEvery - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
	}
}

// one sends one request, a POST when post, and charges the outcome to the
// phase it started in.
func (l *soakLoad) one(c *http.Client, id string, post bool) {
	ph := l.phase.Load()
	start := time.Now()
	latched := l.latchedSince.Load()
	down := l.downSince.Load() != 0
	var connMu sync.Mutex
	var conns []*timedConn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if tc, ok := info.Conn.(*timedConn); ok {
			connMu.Lock()
			conns = append(conns, tc)
			connMu.Unlock()
		}
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	method, body := http.MethodGet, io.Reader(nil)
	if post {
		method, body = http.MethodPost, strings.NewReader(`{"order":"`+id+`"}`)
	}
	req, _ := http.NewRequestWithContext(ctx, method, l.url, body)
	req.Header.Set("X-Request-Id", id)
	if post {
		ph.posts.Add(1)
		l.mu.Lock()
		l.posts[id] = ""
		l.mu.Unlock()
	} else {
		ph.gets.Add(1)
	}
	resp, err := c.Do(req)
	connMu.Lock()
	conns = slices.Clone(conns)
	connMu.Unlock()
	var answer []byte
	if err == nil {
		answer, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(answer))
		}
	}
	if len(conns) > 1 {
		ph.retried.Add(1)
		first := conns[0]
		why := "no read error"
		if e := first.readErr.Load(); e != nil {
			why = *e
		}
		ph.sampleRetry(fmt.Sprintf("%s %s sent again by the client's transport: its first connection, dialed %s before, ended: %s (gen %d of %d kills)",
			method, id, start.Sub(first.dialed).Round(time.Millisecond), why, first.gen, l.killsSent.Load()))
	}
	if err != nil {
		// The connection the request failed on was dialed before the
		// latest SIGKILL'd canaryd was reaped: that process may have had
		// it, and it died with it.
		killed := len(conns) > 0 && conns[len(conns)-1].gen < l.killsSent.Load()
		if killed {
			// Sent just before the SIGKILL phase began, maybe: it died
			// with the kill all the same.
			ph = l.phase.Load()
		}
		switch {
		case killed && post:
			ph.postKilled.Add(1)
		case killed:
			ph.getKilled.Add(1)
		case post:
			ph.postErrs.Add(1)
		default:
			ph.getErrs.Add(1)
		}
		what := ""
		if killed {
			what = " (died with the killed canaryd)"
		}
		// A request sent after the backend's process was gone was not
		// in flight at the kill: at most a pooled connection to it was.
		if after, ok := l.backendDeaths.reapedBefore(start); !killed && ok && after < 5*time.Second {
			what += fmt.Sprintf(" (sent %.1f ms after the killed backend was reaped)", float64(after)/1e6)
			if post {
				ph.postsAfterDeath.Add(1)
			}
		}
		ph.sample(fmt.Sprintf("%s %s%s, after %s: %v", method, id, what, time.Since(start).Round(time.Millisecond), err))
		return
	}
	var msg struct{ Message string }
	json.Unmarshal(answer, &msg)
	if post {
		l.mu.Lock()
		l.posts[id] = msg.Message
		l.mu.Unlock()
	}
	if down {
		ph.queued.Add(1)
		ms := time.Since(start).Milliseconds()
		for cur := ph.maxQueued.Load(); ms > cur && !ph.maxQueued.CompareAndSwap(cur, ms); cur = ph.maxQueued.Load() {
		}
	}
	// Sent after a rollback had returned, and answered before the resume
	// was asked for: the canary must not have served it.
	if latched != 0 && msg.Message == l.canary && l.latchedSince.Load() == latched {
		ph.canaryWhileLatched.Add(1)
		ph.sample(fmt.Sprintf("%s %s: answered by the canary while rolled back", method, id))
	}
}

// usage is canaryd's footprint at one moment.
type usage struct {
	fds, goroutines int
	rssKiB          int
}

func (u usage) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, %.1f MiB", u.fds, u.goroutines, float64(u.rssKiB)/1024)
}

// measure reads canaryd's open files and resident memory from /proc and
// its goroutines from its own /metrics.
func measure(pid int, c *admin.Client) (usage, error) {
	var u usage
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, err
	}
	u.fds = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			u.rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	metrics, err := c.Get(ctx, "/metrics")
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			u.goroutines, _ = strconv.Atoi(rest)
			return u, nil
		}
	}
	return u, errors.New("/metrics has no go_goroutines")
}

// Growth allowed over a process's life, under the same load: the clients
// hold at most one connection each to canaryd, and canaryd at most one per
// client to each backend, so the count moves by a few with the moment
// measured; a leak per fault grows with the faults.
const (
	fdSlack        = 12
	goroutineSlack = 25
	rssGrowth      = 1.5
)

func (u usage) grewFrom(base usage) string {
	var what []string
	if u.fds > base.fds+fdSlack {
		what = append(what, fmt.Sprintf("file descriptors %d → %d (more than +%d)", base.fds, u.fds, fdSlack))
	}
	if u.goroutines > base.goroutines+goroutineSlack {
		what = append(what, fmt.Sprintf("goroutines %d → %d (more than +%d)", base.goroutines, u.goroutines, goroutineSlack))
	}
	if float64(u.rssKiB) > float64(base.rssKiB)*rssGrowth {
		what = append(what, fmt.Sprintf("RSS %d → %d KiB (more than ×%.1f)", base.rssKiB, u.rssKiB, rssGrowth))
	}
	return strings.Join(what, ", ")
}

// phaseResult is one row of the report.
type phaseResult struct {
	name          string
	faults        int
	stats         *phaseStats
	checks        int
	before, after usage
	newProcess    bool // after is another process than before (SIGKILL)
	took          time.Duration
}

// soak is one run of the suite: the appliance, its backends, the load,
// the canaryd process and what the run did to it.
type soak struct {
	t           *testing.T
	plan        soakPlan
	a           *appliance
	ln          *os.File // the held listening socket, as canaryd.socket holds it
	s1, s2, c1  *backendProc
	s2weight    int
	p           *process
	c           *admin.Client
	load        *soakLoad
	rollbacks   int    // rollbacks the run caused, each an incident report
	entered     string // rollout.json's entered, kept until a resume restarts the rollout
	baseline    usage  // the current process's footprint after warm-up
	results     []phaseResult
	checks      int // state checks passed in the current phase
	reloadsDone int
	refused     int // broken configs among the reloads, each refused
	pressesDone int
}

func (s *soak) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[proxy]\nlisten = %q\n\n[admin]\nsocket = %q\nlisten = \"\"\n\n", s.a.listen, s.a.socket)
	fmt.Fprintf(&b, "[canary]\nversion = %q\nsteps = [25, 50]\nstep_interval = \"1h\"\n\n", soakVersion)
	fmt.Fprintf(&b, "[journal]\nrecords = 1000\n\n[incidents]\nkeep = %d\n", soakKeep)
	for _, u := range []struct {
		b      *backendProc
		weight int
		role   string
	}{{s.s1, 10, "stable"}, {s.s2, s.s2weight, "stable"}, {s.c1, 5, "canary"}} {
		fmt.Fprintf(&b, "\n[[upstream]]\nname = %q\nurl = \"http://%s\"\nweight = %d\nrole = %q\nfail_timeout = \"1s\"\n",
			u.b.name, u.b.addr, u.weight, u.role)
	}
	return b.String()
}

// startCanaryd starts canaryd as systemd starts it from canaryd.socket:
// the listening socket is its fd 3, LISTEN_FDS=1 and LISTEN_PID its own
// pid, which only a shell that execs it knows beforehand.
func (s *soak) startCanaryd() {
	s.t.Helper()
	canaryd := filepath.Join(bin, "canaryd")
	args := []string{"-config-dir", s.a.configDir, "-state-dir", s.a.stateDir, "-gpio", "sim"}
	cmd := exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, canaryd}, args...)...)
	cmd.Env = append(env(), "LISTEN_FDS=1", "LISTEN_FDNAMES=canaryd.socket")
	cmd.ExtraFiles = []*os.File{s.ln}
	s.p = startCommand(s.t, cmd, "canaryd (socket-activated)", args...)
	s.p.waitReady(s.a.socket)
}

func (s *soak) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (s *soak) status() (admin.Status, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.c.Status(ctx)
}

// waitStatus polls the status until ok holds, for at most 10 s.
func (s *soak) waitStatus(what string, ok func(admin.Status) bool) error {
	var st admin.Status
	var err error
	if testkit.Within(10*time.Second, func() bool { st, err = s.status(); return err == nil && ok(st) }) {
		return nil
	}
	return fmt.Errorf("%s: not within 10 s (state %s, generation %d, error %v)", what, st.State, st.Config.Generation, err)
}

// phase runs inject under the load as the fault class name and records
// its row of the report.
func (s *soak) phase(name string, inject func() int) {
	s.t.Helper()
	stats := new(phaseStats)
	start := time.Now()
	s.load.phase.Store(stats)
	s.checks = 0
	before := s.measure()
	faults := inject()
	time.Sleep(s.plan.dwell + 200*time.Millisecond) // the phase's last requests end in it
	after := s.measure()
	s.checkState(name)
	r := phaseResult{name: name, faults: faults, stats: stats, checks: s.checks, before: before, after: after,
		newProcess: name == "canaryd SIGKILL", took: time.Since(start)}
	s.results = append(s.results, r)
	if grew := after.grewFrom(s.baseline); grew != "" && !r.newProcess {
		s.t.Errorf("%s: canaryd grew since the warm-up: %s", name, grew)
	}
	s.t.Logf("%-16s %3d faults, %5d requests; canaryd %s → %s", name, faults,
		stats.gets.Load()+stats.posts.Load(), before, after)
}

func (s *soak) measure() usage {
	s.t.Helper()
	u, err := measure(s.p.cmd.Process.Pid, s.c)
	if err != nil {
		s.t.Fatalf("measuring canaryd: %v", err)
	}
	return u
}

// checkState reads the state directory back and compares it with what the
// run did and with the status: the latch, the rollout's step, the incident
// reports, each whole.
func (s *soak) checkState(when string) {
	s.t.Helper()
	st, err := s.status()
	if err != nil {
		s.t.Fatalf("%s: status: %v", when, err)
	}
	pass := func(ok bool, format string, args ...any) {
		s.t.Helper()
		if ok {
			s.checks++
		} else {
			s.t.Errorf("%s: "+format, append([]any{when}, args...)...)
		}
	}
	pass(st.Config.Error == "", "config error %q", st.Config.Error)
	wantMode := state.Canary
	if s.load.latchedSince.Load() != 0 {
		wantMode = state.RolledBack
	}
	pass(st.State == wantMode, "state %s, want %s", st.State, wantMode)

	var latch state.Latch
	err = readStrict(filepath.Join(s.a.stateDir, state.FileName), &latch)
	switch {
	case errors.Is(err, os.ErrNotExist):
		pass(wantMode == state.Canary, "no %s while rolled back", state.FileName)
	case err != nil:
		pass(false, "%v", err)
	case wantMode == state.RolledBack:
		pass(latch.Mode == state.RolledBack && latch.Version == soakVersion && !latch.At.IsZero(), "latch %+v, want rolled back for %s", latch, soakVersion)
	default:
		pass(latch.Mode == "", "latch %+v, want none", latch)
	}

	var ro state.Rollout
	if err := readStrict(filepath.Join(s.a.stateDir, state.RolloutFileName), &ro); err != nil {
		pass(false, "%v", err)
	} else {
		pass(ro.Version == soakVersion && ro.Step == 0 && ro.Percent == 25 && !ro.Entered.IsZero(),
			"rollout.json %+v, want %s at step 0 (25%%)", ro, soakVersion)
		entered := ro.Entered.UTC().Format(time.RFC3339Nano)
		if s.entered == "" {
			s.entered = entered
		}
		pass(entered == s.entered, "rollout.json entered %s, was %s: the step's start was lost", entered, s.entered)
		if wantMode == state.Canary {
			pass(st.Rollout != nil && st.Rollout.Step == ro.Step, "status rollout %+v, file %+v", st.Rollout, ro)
		}
	}
	s.checkIncidents(when, pass)
}

// checkIncidents reads every report: each parses whole, is of this
// version, lists only POSTs the load sent, no POST twice; there are as
// many as the rollbacks, up to incidents.keep, and no temporary file left.
func (s *soak) checkIncidents(when string, pass func(bool, string, ...any)) {
	dir := filepath.Join(s.a.stateDir, incident.DirName)
	want := min(s.rollbacks, soakKeep)
	// A report is written after its rollback returned, through a
	// temporary file, and the oldest is pruned after: wait for the dust.
	var entries []os.DirEntry
	testkit.Within(10*time.Second, func() bool {
		entries, _ = os.ReadDir(dir)
		return len(entries) == want && !slices.ContainsFunc(entries, func(e os.DirEntry) bool {
			return strings.HasPrefix(e.Name(), ".")
		})
	})
	pass(len(entries) == want, "%d files in %s, want %d reports (%d rollbacks, keep %d)", len(entries), dir, want, s.rollbacks, soakKeep)
	seen := map[string]string{}
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			pass(false, "%s: not a report", e.Name())
			continue
		}
		var r incident.Report
		if err := readStrict(filepath.Join(dir, e.Name()), &r); err != nil {
			pass(false, "%v", err)
			continue
		}
		pass(r.Version == soakVersion && r.Cause == state.CauseButton && !r.RolledBack.Before(r.Started),
			"%s: version %q cause %q started %s rolled back %s", e.Name(), r.Version, r.Cause, r.Started, r.RolledBack)
		bad := 0
		for _, q := range r.Requests {
			answered, sent := s.load.posts[q.RequestID]
			switch {
			case !sent || q.Method != http.MethodPost || q.Path != "/orders":
				bad++
				s.t.Logf("%s: %s lists %+v, which the load did not send", when, e.Name(), q)
			case q.Status == http.StatusOK && answered != "" && answered != s.c1.name:
				bad++
				s.t.Logf("%s: %s lists %s, which %s answered", when, e.Name(), q.RequestID, answered)
			case seen[q.RequestID] != "":
				bad++
				s.t.Logf("%s: %s lists %s, already in %s", when, e.Name(), q.RequestID, seen[q.RequestID])
			}
			seen[q.RequestID] = e.Name()
		}
		pass(bad == 0, "%s: %d of its %d requests are not the canary's POSTs", e.Name(), bad, len(r.Requests))
	}
}

// readStrict decodes a state file as the daemon's own type, refusing
// unknown fields and trailing bytes: a torn or mixed file fails.
func readStrict(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: more than one JSON value", path)
	}
	return nil
}

// putConfig replaces canaryd.toml with text, as an editor saving through
// a new file does.
func (s *soak) putConfig(text string) error {
	tmp := filepath.Join(s.a.configDir, ".canaryd.toml.new")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.a.configDir, "canaryd.toml"))
}

// reload rewrites the config with the other weight for s2, asks for a
// reload by one of the ways an operator has, and waits for it to apply.
// One time in ten a broken config comes first: refused, it changes
// nothing, and the good one after it clears the error.
func (s *soak) reload() error {
	st, err := s.status()
	if err != nil {
		return err
	}
	before := st.Config.Generation
	if s.reloadsDone%10 == 4 {
		if err := s.refusedReload(before); err != nil {
			return err
		}
	}
	s.s2weight = 11 - s.s2weight // 5 ↔ 6
	if err := s.putConfig(s.config()); err != nil {
		return err
	}
	switch s.reloadsDone++; s.reloadsDone % 3 {
	case 0: // the watcher alone
	case 1:
		ctx, cancel := s.ctx()
		_, err = s.c.Reload(ctx)
		cancel()
	case 2:
		err = s.p.cmd.Process.Signal(syscall.SIGHUP)
	}
	if err != nil {
		return fmt.Errorf("reload %d: %w", s.reloadsDone, err)
	}
	w := s.s2weight
	return s.waitStatus(fmt.Sprintf("reload %d applied", s.reloadsDone), func(st admin.Status) bool {
		return st.Config.Generation > before && st.Config.Error == "" && slices.ContainsFunc(st.Upstreams, func(u admin.Upstream) bool {
			return u.Name == s.s2.name && u.Weight == w
		})
	})
}

// refusedReload writes a config with an unknown key and asks for a
// reload, which must be refused with the running config left as it was.
func (s *soak) refusedReload(generation uint64) error {
	if err := s.putConfig(strings.Replace(s.config(), "[proxy]\n", "[proxy]\nlisten_twice = true\n", 1)); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var refusal *admin.Error
	if _, err := s.c.Reload(ctx); !errors.As(err, &refusal) {
		return fmt.Errorf("a reload of a broken config: %v, want a refusal", err)
	}
	s.refused++
	st, err := s.status()
	switch {
	case err != nil:
		return err
	case st.Config.Generation != generation || !strings.Contains(st.Config.Error, "listen_twice"):
		return fmt.Errorf("after a refused reload: generation %d (was %d), error %q", st.Config.Generation, generation, st.Config.Error)
	}
	return nil
}

// killBackend kills b, restarts it, and waits until canaryd counts it
// healthy again.
func (s *soak) killBackend(b *backendProc) error {
	if err := b.restart(s.plan.down); err != nil {
		return err
	}
	return s.waitStatus(b.name+" healthy again", func(st admin.Status) bool {
		return slices.ContainsFunc(st.Upstreams, func(u admin.Upstream) bool { return u.Name == b.name && u.Healthy })
	})
}

// press rolls back with the button and resumes: by a long press one time
// in four (it holds the button for over 3 s), else as canaryctl resume.
func (s *soak) press() error {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.rollBack(ctx); err != nil {
		return err
	}
	time.Sleep(s.plan.dwell)
	return s.resume(ctx)
}

// rollBack presses the button and returns once the daemon rolled back.
func (s *soak) rollBack(ctx context.Context) error {
	if _, err := s.c.Button(ctx, false); err != nil {
		return fmt.Errorf("button: %w", err)
	}
	if err := s.waitStatus("rolled back by the button", func(st admin.Status) bool { return st.State == state.RolledBack }); err != nil {
		return err
	}
	s.load.latchedSince.Store(time.Now().UnixNano())
	s.rollbacks++
	return nil
}

func (s *soak) resume(ctx context.Context) error {
	s.pressesDone++
	s.load.latchedSince.Store(0)
	var err error
	if s.pressesDone%4 == 0 {
		_, err = s.c.Button(ctx, true)
	} else {
		_, err = s.c.Resume(ctx)
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	// A resume after a rollback starts the rollout again at its first step.
	s.entered = ""
	return s.waitStatus("resumed", func(st admin.Status) bool { return st.State == state.Canary })
}

// sigkill kills canaryd with SIGKILL, rolled back first when latched, and
// starts it again on the held socket, as systemd's Restart= would.
func (s *soak) sigkill(latched bool) {
	s.t.Helper()
	if latched {
		ctx, cancel := s.ctx()
		err := s.rollBack(ctx)
		cancel()
		if err != nil {
			s.t.Fatal(err)
		}
		s.checkIncidents("before SIGKILL", func(bool, string, ...any) {})
	}
	s.load.downSince.Store(time.Now().UnixNano())
	s.load.killsSent.Add(1)
	s.p.signal(syscall.SIGKILL)
	<-s.p.done
	s.load.killsReaped.Add(1)
	if out := s.p.stderr.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
		s.t.Errorf("the killed canaryd had reported a race or a panic:\n%s", out)
	}
	s.startCanaryd()
	s.load.downSince.Store(0)
	if latched {
		s.checkState("after SIGKILL, rolled back")
		ctx, cancel := s.ctx()
		err := s.resume(ctx)
		cancel()
		if err != nil {
			s.t.Fatal(err)
		}
	}
}

func TestSoak(t *testing.T) {
	integration(t)
	plan, ok := soakPlans[*soakForm]
	if !ok {
		t.Fatalf("-soak=%q: want short or long", *soakForm)
	}
	started := time.Now()
	s := &soak{t: t, plan: plan, a: newAppliance(t), s2weight: 5}
	died := new(deaths)
	s.s1, s.s2, s.c1 = startBackendProc(t, "s1", died), startBackendProc(t, "s2", died), startBackendProc(t, "c1", died)
	s.a.writeConfig(s.config())

	// The test holds the port, as systemd's canaryd.socket does; proxy.listen
	// (s.a.listen) stays free, so a canaryd that bound it instead would
	// serve nobody.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if s.ln, err = tcp.(*net.TCPListener).File(); err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	addr := tcp.Addr().String()
	s.c = admin.NewClient(s.a.socket)
	s.startCanaryd()
	if st, err := s.status(); err != nil || st.Listen != addr {
		t.Fatalf("canaryd serves %q (%v), want the inherited socket %s", st.Listen, err, addr)
	}
	if c, err := net.DialTimeout("tcp", s.a.listen, time.Second); err == nil {
		c.Close()
		t.Fatalf("canaryd also listens on proxy.listen %s, beside the inherited socket", s.a.listen)
	}

	warmup := new(phaseStats)
	s.load = startLoad(addr, s.c1.name, plan, warmup, died)
	defer func() {
		if s.load != nil {
			s.load.close()
		}
	}()
	// The warm-up fills the canary journal's ring and the pools.
	time.Sleep(plan.quiet)
	if n := warmup.getErrs.Load() + warmup.postErrs.Load(); n != 0 {
		t.Fatalf("%d errors before any fault: %v", n, warmup.samples)
	}
	s.baseline = s.measure()
	s.checkState("after the warm-up")

	s.phase("none", func() int { time.Sleep(plan.quiet); return 0 })
	s.phase("reload", func() int {
		for i := range plan.reloads {
			if err := s.reload(); err != nil {
				t.Fatalf("reload %d: %v", i+1, err)
			}
			time.Sleep(plan.dwell)
		}
		return plan.reloads
	})
	s.phase("canary killed", func() int {
		for i := range plan.canaryKills {
			if err := s.killBackend(s.c1); err != nil {
				t.Fatalf("canary kill %d: %v", i+1, err)
			}
			time.Sleep(plan.dwell)
		}
		return plan.canaryKills
	})
	s.phase("stable killed", func() int {
		n := 0
		for range plan.stableRounds {
			for _, b := range []*backendProc{s.s1, s.s2} {
				if err := s.killBackend(b); err != nil {
					t.Fatalf("stable kill %d: %v", n+1, err)
				}
				n++
				time.Sleep(plan.dwell)
			}
		}
		return n
	})
	s.phase("button+resume", func() int {
		for i := range plan.presses {
			if err := s.press(); err != nil {
				t.Fatalf("press %d: %v", i+1, err)
			}
			time.Sleep(plan.dwell)
		}
		return plan.presses
	})
	s.phase("all together", func() int {
		// Three operators at once: one edits the config, one crashes the
		// canary, one presses the button; each round is one of each.
		var wg sync.WaitGroup
		errs := make(chan error, 3*plan.together)
		run := func(f func() error) {
			wg.Go(func() {
				for range plan.together {
					if err := f(); err != nil {
						errs <- err
						return
					}
					time.Sleep(plan.dwell)
				}
			})
		}
		// Each goroutine keeps its own part of s: the config's weight,
		// the canary backend, the latch's bookkeeping.
		run(s.reload)
		run(func() error { return s.killBackend(s.c1) })
		run(s.press)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return 3 * plan.together
	})
	s.phase("canaryd SIGKILL", func() int {
		for i := range plan.sigkills {
			s.sigkill(i == plan.sigkills/2)
			time.Sleep(plan.dwell)
		}
		return plan.sigkills
	})
	// The last process's own baseline, then the load alone once more.
	time.Sleep(plan.dwell)
	s.baseline = s.measure()
	s.phase("none, after", func() int { time.Sleep(plan.quiet); return 0 })
	s.load.close()
	s.load = nil

	report := s.report(*soakForm, time.Since(started))
	t.Log("\n" + report)
	if *soakReport != "" {
		if err := os.WriteFile(*soakReport, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	s.judge()
	s.p.stop()
}

// judge applies the rule: no error at all where another healthy upstream
// was there to take an idempotent request, nothing served by a rolled-back
// canary, and no failed POST where nothing was killed.
func (s *soak) judge() {
	for _, r := range s.results {
		st := r.stats
		if n := st.getErrs.Load(); n != 0 {
			s.t.Errorf("%s: %d GETs failed, want 0: %v", r.name, n, st.samples)
		}
		if n := st.canaryWhileLatched.Load(); n != 0 {
			s.t.Errorf("%s: the canary answered %d requests while rolled back: %v", r.name, n, st.samples)
		}
		switch r.name {
		case "none", "reload", "button+resume", "none, after":
			if n := st.postErrs.Load(); n != 0 {
				s.t.Errorf("%s: %d POSTs failed with nothing killed, want 0: %v", r.name, n, st.samples)
			}
		case "canaryd SIGKILL":
			if n := st.postErrs.Load(); n != 0 {
				s.t.Errorf("%s: %d POSTs failed on connections the new canaryd took, want 0: %v", r.name, n, st.samples)
			}
			if st.queued.Load() == 0 {
				s.t.Errorf("%s: no request was sent while canaryd was down: the test proves nothing about the held socket", r.name)
			}
		}
		if st.gets.Load() == 0 || st.posts.Load() == 0 {
			s.t.Errorf("%s: %d GETs and %d POSTs: no load", r.name, st.gets.Load(), st.posts.Load())
		}
	}
}

// report is the per-fault table.
func (s *soak) report(form string, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "canaryd fault suite (%s form, %s, %d clients at most one request per %s each; race detector %v)\n\n",
		form, took.Round(time.Second), s.plan.workers, s.plan.interval, raceEnabled())
	fmt.Fprintf(&b, "%-16s %5s %6s %8s %7s %8s %13s %8s %7s %6s  %-9s %-11s %s\n",
		"fault class", "took", "faults", "requests", "GET err", "POST err", "died w/ kill", "retried", "queued", "checks",
		"fds", "goroutines", "RSS MiB")
	for _, r := range s.results {
		st := r.stats
		arrow := "→"
		if r.newProcess {
			arrow = "⇒"
		}
		fmt.Fprintf(&b, "%-16s %5s %6d %8d %7d %8d %13s %8d %7s %6d  %-9s %-11s %s\n",
			r.name, r.took.Round(time.Second), r.faults, st.gets.Load()+st.posts.Load(), st.getErrs.Load(), st.postErrs.Load(),
			killedCell(st), st.retried.Load(), queuedCell(st), r.checks,
			fmt.Sprintf("%d%s%d", r.before.fds, arrow, r.after.fds),
			fmt.Sprintf("%d%s%d", r.before.goroutines, arrow, r.after.goroutines),
			fmt.Sprintf("%.1f%s%.1f", float64(r.before.rssKiB)/1024, arrow, float64(r.after.rssKiB)/1024))
	}
	fmt.Fprintf(&b, "\nreload, all together: %d of the %d rewrites came after a broken config, refused with nothing changed.\n", s.refused, s.reloadsDone)
	var postErrs, afterDeath int64
	for _, r := range s.results {
		postErrs += r.stats.postErrs.Load()
		afterDeath += r.stats.postsAfterDeath.Load()
	}
	fmt.Fprintf(&b, "POST err: %d of the %d were sent after the killed backend's process had been reaped: not in flight at the kill.\n", afterDeath, postErrs)
	b.WriteString("The failed requests (the first five of each class):\n")
	for _, r := range s.results {
		for _, e := range r.stats.samples {
			fmt.Fprintf(&b, "  %s: %s\n", r.name, e)
		}
	}
	b.WriteString("The requests the client's transport sent again (the first three of each class):\n")
	for _, r := range s.results {
		for _, e := range r.stats.retries {
			fmt.Fprintf(&b, "  %s: %s\n", r.name, e)
		}
	}
	b.WriteString(`
GET err, POST err: failed requests (a transport error or not 200), by the class
  active when each was sent; GETs are the idempotent ones. The rule: no GET fails
  while another healthy upstream exists, no request fails where nothing was killed.
died w/ kill: GET/POST on a connection the SIGKILL'd canaryd had open: they die
  with it. A GET whose connection broke before any answer byte is sent again by
  Go's http.Transport, as browsers do: "retried" counts requests sent again.
queued: requests sent while canaryd was down, held in the socket's backlog and
  answered by the next canaryd (the longest wait in brackets).
fds, goroutines, RSS: canaryd at the start and the end of the phase, under load;
  ⇒ is another process (after the SIGKILLs).
`)
	return b.String()
}

func killedCell(st *phaseStats) string {
	g, p := st.getKilled.Load(), st.postKilled.Load()
	if g == 0 && p == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", g, p)
}

func queuedCell(st *phaseStats) string {
	if st.queued.Load() == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%dms)", st.queued.Load(), st.maxQueued.Load())
}
