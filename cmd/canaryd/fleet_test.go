package main

// The fleet in network namespaces (make test-fleet): three canaryd, each
// with its backends in a namespace of its own, and a three-node cluster of
// Debian's nats-server, one node a namespace, all on one bridge. A member's
// link to the bridge is its link to the fleet: set down, it is cut off,
// while its clients, its backends and its admin socket still reach it.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
)

var fleetTests = flag.Bool("fleet", false, "run the fleet's tests in network namespaces (make test-fleet): root, ip and nats-server")

// lab is the fleet under test.
type lab struct {
	t       *testing.T
	sw      *netns // the bridge
	nats    []*natsNode
	members []*labMember
}

// natsNode is one node of the NATS cluster.
type natsNode struct {
	name, ip, conf string
	ns             *netns
	cmd            *exec.Cmd
	done           chan struct{}
}

// labMember is one canaryd of the fleet, with its backends and its load.
type labMember struct {
	name   string
	ns     *netns
	a      *appliance
	proc   *process
	ctl    *admin.Client
	v2fail atomic.Uint64 // math.Float64bits of the share of the canary's answers that are 503
	load   *labLoad
	dead   bool // killed for good by the test
	// ln is the proxy's listening socket, held by the test and passed to
	// each canaryd as systemd's canaryd.socket passes it: a restart loses
	// no connection.
	ln *os.File
}

// newLab builds the namespaces and starts the NATS cluster and the three
// members, each under load, and waits until every member is connected.
func newLab(t *testing.T) *lab {
	t.Helper()
	prefix := fmt.Sprintf("cpf%d", os.Getpid()%100000)
	l := &lab{t: t, sw: newNetns(t, prefix+"-sw")}
	l.sw.ip("link", "add", "br0", "type", "bridge")
	l.sw.ip("link", "set", "br0", "up")
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		l.nats = append(l.nats, &natsNode{name: name, ip: fmt.Sprintf("10.77.0.%d", i), ns: l.plug(prefix, name, fmt.Sprintf("10.77.0.%d", i))})
	}
	for _, n := range l.nats {
		l.startNATS(n)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("m%d", i)
		m := &labMember{name: name, ns: l.plug(prefix, name, fmt.Sprintf("10.77.0.%d", 10+i))}
		l.members = append(l.members, m)
		l.startMember(m)
	}
	l.eventually(30*time.Second, "every member connected to the fleet", func(m *labMember, st admin.Status) bool {
		return st.Fleet != nil && st.Fleet.Connected && st.Fleet.Members == 3
	})
	for _, m := range l.members {
		m.load = startLabLoad(m)
	}
	return l
}

// plug makes the namespace prefix-name, linked to the bridge with address ip.
func (l *lab) plug(prefix, name, ip string) *netns {
	ns := newNetns(l.t, prefix+"-"+name)
	l.sw.ip("link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
	l.sw.ip("link", "set", name, "master", "br0", "up")
	ns.ip("addr", "add", ip+"/24", "dev", "eth0")
	ns.ip("link", "set", "eth0", "up")
	return ns
}

// startNATS starts node n of the cluster, JetStream on, routes to the others.
func (l *lab) startNATS(n *natsNode) {
	l.t.Helper()
	if n.conf == "" {
		var routes []string
		for _, o := range l.nats {
			if o != n {
				routes = append(routes, fmt.Sprintf("%q", "nats-route://"+o.ip+":6222"))
			}
		}
		dir := l.t.TempDir()
		n.conf = filepath.Join(dir, "nats.conf")
		conf := fmt.Sprintf("server_name: %s\nlisten: %q\njetstream { store_dir: %q }\ncluster {\n  name: lab\n  listen: %q\n  routes: [%s]\n}\n",
			n.name, n.ip+":4222", filepath.Join(dir, "js"), n.ip+":6222", strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	n.cmd = n.ns.command("nats-server", "-c", n.conf)
	out := new(testkit.SyncBuffer)
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	n.done = make(chan struct{})
	cmd, done := n.cmd, n.done
	go func() { cmd.Wait(); close(done) }()
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if l.t.Failed() {
			l.t.Logf("nats-server %s:\n%s", n.name, out)
		}
	})
}

// killNATS kills node n at once, as a power cut would.
func (l *lab) killNATS(n *natsNode) {
	n.cmd.Process.Kill()
	<-n.done
}

// startMember writes m's config and starts its backends and canaryd.
func (l *lab) startMember(m *labMember) {
	l.t.Helper()
	if m.a == nil {
		m.a = newAppliance(l.t)
		m.a.listen = "127.0.0.1:8080"
		m.ctl = admin.NewClient(m.a.socket)
		// On every address of the namespace: a virtual one keepalived
		// moves onto it too.
		f, err := m.ns.listen(":8080").(*net.TCPListener).File()
		if err != nil {
			l.t.Fatal(err)
		}
		l.t.Cleanup(func() { f.Close() })
		m.ln = f
		for name, addr := range map[string]string{"v1": "127.0.0.1:9001", "v2": "127.0.0.1:9002"} {
			ln := m.ns.listen(addr)
			srv := &http.Server{Handler: labBackend(name, &m.v2fail), ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			l.t.Cleanup(func() { srv.Close() })
		}
		var servers []string
		for _, n := range l.nats {
			servers = append(servers, fmt.Sprintf("%q", "nats://"+n.ip+":4222"))
		}
		m.a.writeConfig(fmt.Sprintf(`[proxy]
listen = ":8080"

[admin]
socket = %q
listen = ""

[canary]
version = "v2"
auto_rollback = true

[[upstream]]
name = "v1"
url = "http://127.0.0.1:9001"
weight = 10
role = "stable"

[[upstream]]
name = "v2"
url = "http://127.0.0.1:9002"
weight = 5
role = "canary"

[fleet]
servers = [%s]
name = %q
release = "lab"
`, m.a.socket, strings.Join(servers, ", "), m.name))
	}
	args := []string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, "ip", "netns", "exec", m.ns.name,
		filepath.Join(bin, "canaryd"), "-config-dir", m.a.configDir, "-state-dir", m.a.stateDir, "-gpio", "sim"}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = append(env(), "LISTEN_FDS=1", "LISTEN_FDNAMES=canaryd.socket")
	cmd.ExtraFiles = []*os.File{m.ln}
	m.proc = startCommand(l.t, cmd, "canaryd "+m.name)
	proc := m.proc
	l.t.Cleanup(func() {
		// A failed test shows where each canaryd's goroutines stood.
		if l.t.Failed() {
			proc.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-proc.done:
			case <-time.After(5 * time.Second):
			}
		}
	})
	m.proc.waitReady(m.a.socket)
}

// labBackend answers with its name; the canary fails the share in fail.
func labBackend(name string, fail *atomic.Uint64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name == "v2" && rand.Float64() < math.Float64frombits(fail.Load()) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, name)
	})
}

// status is m's status, through its admin socket.
func (m *labMember) status() (admin.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.ctl.Status(ctx)
}

// eventually waits until ok holds of every member's status.
func (l *lab) eventually(timeout time.Duration, what string, ok func(*labMember, admin.Status) bool) {
	l.t.Helper()
	l.eventuallyOf(l.members, timeout, what, ok)
}

func (l *lab) eventuallyOf(members []*labMember, timeout time.Duration, what string, ok func(*labMember, admin.Status) bool) time.Duration {
	l.t.Helper()
	start := time.Now()
	for _, m := range members {
		var last admin.Status
		var lastErr error
		if !testkit.Within(timeout-time.Since(start), func() bool {
			last, lastErr = m.status()
			return lastErr == nil && ok(m, last)
		}) {
			l.t.Fatalf("%s: not so for %s within %s: %v %s", what, m.name, timeout, lastErr, labStatus(last))
		}
	}
	return time.Since(start)
}

// labStatus is what a failed wait shows of a member.
func labStatus(st admin.Status) string {
	b, _ := json.Marshal(struct {
		State   state.Mode   `json:"state"`
		Latch   *admin.Latch `json:"latch"`
		Verdict any          `json:"verdict"`
		Fleet   *admin.Fleet `json:"fleet"`
	}{st.State, st.Latch, st.Verdict, st.Fleet})
	return string(b)
}

// all reports whether ok holds of every member's status now.
func (l *lab) all(ok func(*labMember, admin.Status) bool) bool {
	for _, m := range l.members {
		if st, err := m.status(); err != nil || !ok(m, st) {
			return false
		}
	}
	return true
}

func rolledBack(_ *labMember, st admin.Status) bool { return st.State == state.RolledBack }
func serving(_ *labMember, st admin.Status) bool    { return st.State == state.Canary }

// press presses m's button with canaryctl and returns when it did.
func (l *lab) press(m *labMember) { mustCtl(l.t, m.a.socket, "button") }

// resume resumes the release from m.
func (l *lab) resume(m *labMember) { mustCtl(l.t, m.a.socket, "resume") }

// cut sets m's link to the fleet down, or up again.
func (m *labMember) cut(down bool) {
	to := "up"
	if down {
		to = "down"
	}
	m.ns.ip("link", "set", "eth0", to)
}

// labLoad sends a member's clients' requests, one at a time, until stopped.
type labLoad struct {
	stop             chan struct{}
	done             chan struct{}
	ok, failed, lost atomic.Int64
	every            atomic.Int64 // the wait between two requests
	mu               sync.Mutex
	firstLost        []string
}

// startLabLoad sends requests to m's proxy, from inside its namespace, 50
// a second at most (every says), until stopped; at most 200 000.
func startLabLoad(m *labMember) *labLoad {
	ld := &labLoad{stop: make(chan struct{}), done: make(chan struct{})}
	ld.every.Store(int64(20 * time.Millisecond))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: m.ns.dial, MaxIdleConnsPerHost: 2}}
	go func() {
		defer close(ld.done)
		for range 200_000 {
			select {
			case <-ld.stop:
				return
			case <-time.After(time.Duration(ld.every.Load())):
			}
			resp, err := c.Get("http://" + m.a.listen + "/")
			if err != nil {
				ld.lose(err.Error())
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				ld.lose(err.Error())
			case resp.StatusCode == http.StatusOK:
				ld.ok.Add(1)
			case resp.StatusCode == http.StatusServiceUnavailable && string(body) == "v2":
				ld.failed.Add(1) // the canary's own answer, passed on
			default:
				ld.lose(resp.Status + ": " + string(body))
			}
		}
	}()
	return ld
}

func (ld *labLoad) lose(why string) {
	ld.lost.Add(1)
	ld.mu.Lock()
	if len(ld.firstLost) < 5 {
		ld.firstLost = append(ld.firstLost, why)
	}
	ld.mu.Unlock()
}

func (ld *labLoad) close() {
	close(ld.stop)
	<-ld.done
}

// p99 is the 99th percentile of ds.
func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

func TestFleetInNetworkNamespaces(t *testing.T) {
	netnsAvailable(t)
	l := newLab(t)
	m1, m2, m3 := l.members[0], l.members[1], l.members[2]
	others := func(m *labMember) []*labMember {
		return slices.DeleteFunc(slices.Clone(l.members), func(o *labMember) bool { return o == m })
	}

	t.Run("canaryctl fleet lists the three members", func(t *testing.T) {
		var list []admin.FleetMember
		out := mustCtl(t, m1.a.socket, "fleet", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 3 {
			t.Fatalf("canaryctl fleet --json: %v\n%s", err, out)
		}
		for i, m := range list {
			if m.Name != l.members[i].name || !m.Connected || m.State != state.Canary || m.LastSeen == "" {
				t.Errorf("member %d: %+v", i, m)
			}
		}
	})

	t.Run("a press on one member rolls back all three within a second", func(t *testing.T) {
		var took []time.Duration
		for i := range 20 {
			from := l.members[i%3]
			start := time.Now()
			l.press(from)
			l.eventuallyOf(others(from), 2*time.Second, "rolled back by a press elsewhere", rolledBack)
			took = append(took, time.Since(start))
			l.resume(l.members[(i+1)%3])
			l.eventually(2*time.Second, "resumed from another member", serving)
		}
		t.Logf("a press to every member rolled back: p99 %s, max %s over %d presses (canaryctl's start included)",
			p99(took).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond), len(took))
		if p99(took) > time.Second {
			t.Errorf("p99 %s over 20 presses, want within 1 s", p99(took))
		}
	})

	t.Run("canaryctl incidents --fleet lists every member's reports", func(t *testing.T) {
		var list []admin.FleetIncident
		out := mustCtl(t, m3.a.socket, "incidents", "--fleet", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("canaryctl incidents --fleet --json: %v\n%s", err, out)
		}
		by := map[string]int{}
		for _, in := range list {
			by[in.Member]++
		}
		if len(by) != 3 || by["m1"] == 0 || by["m2"] == 0 || by["m3"] == 0 {
			t.Errorf("the fleet's incident reports by member: %v, want reports of m1, m2 and m3", by)
		}
	})

	t.Run("one NATS node killed changes nothing", func(t *testing.T) {
		l.killNATS(l.nats[0])
		start := time.Now()
		l.press(m2)
		// A member whose node died reconnects to another, and the bucket's
		// replicas elect a new leader if it died with the node: seconds
		// in which the press reaches such a member through the bucket.
		l.eventually(10*time.Second, "rolled back with a NATS node just killed", rolledBack)
		t.Logf("a press with a NATS node just killed rolled back every member in %s", time.Since(start).Round(time.Millisecond))
		// A resume in those seconds may not see the press, which is not in
		// the bucket yet; by the rule it is not undone, and a resume once
		// it is, is.
		start = time.Now()
		resumes := 0
		for held := false; !held; {
			if resumes++; resumes > 6 {
				t.Fatalf("6 resumes with a NATS node down did not hold")
			}
			l.resume(m3)
			held = testkit.Within(5*time.Second, func() bool { return l.all(serving) })
			time.Sleep(2 * time.Second)
			held = held && l.all(serving)
		}
		t.Logf("with a NATS node down the fleet resumed for good after %d resume(s), %s", resumes, time.Since(start).Round(time.Millisecond))
		// Settled on two nodes, a press reaches every member as on three.
		start = time.Now()
		l.press(m1)
		l.eventually(time.Second, "a press with the node down for a while rolled back all", rolledBack)
		t.Logf("with two NATS nodes a press rolled back every member in %s", time.Since(start).Round(time.Millisecond))
		l.resume(m2)
		l.eventually(10*time.Second, "a resume with the node down for a while resumed all", serving)
		l.startNATS(l.nats[0])
	})

	t.Run("a member cut off keeps serving and is rolled back when its link is back", func(t *testing.T) {
		before := m3.load.ok.Load()
		m3.cut(true)
		l.eventuallyOf([]*labMember{m3}, 10*time.Second, "m3 knows it is cut off", func(_ *labMember, st admin.Status) bool {
			return !st.Fleet.Connected
		})
		if r := canaryctl(t, m3.a.socket, "resume"); r.code != 1 || !strings.Contains(r.stderr, "the fleet is unreachable: resume needs it") {
			t.Errorf("resume cut off: exit %d, %q; want 1 and the fleet is unreachable", r.code, r.stderr)
		}
		l.press(m1)
		l.eventuallyOf([]*labMember{m1, m2}, time.Second, "rolled back while m3 is cut off", rolledBack)
		if st, _ := m3.status(); st.State != state.Canary {
			t.Fatalf("m3, cut off, heard of the press: %s", labStatus(st))
		}
		if m3.load.ok.Load() <= before {
			t.Error("m3 answered no request while cut off")
		}
		m3.cut(false)
		back := l.eventuallyOf([]*labMember{m3}, 2*time.Second, "m3 rolled back once its link is back", rolledBack)
		t.Logf("m3 rolled back %s after its link came back", back.Round(time.Millisecond))
		l.eventually(10*time.Second, "every member connected again", func(_ *labMember, st admin.Status) bool { return st.Fleet.Connected })
		l.resume(m2)
		l.eventually(2*time.Second, "resumed", serving)
	})

	t.Run("a press cut off racing a resume elsewhere ends rolled back everywhere", func(t *testing.T) {
		l.press(m1)
		l.eventually(time.Second, "rolled back", rolledBack)
		m3.cut(true)
		l.eventuallyOf([]*labMember{m3}, 10*time.Second, "m3 knows it is cut off", func(_ *labMember, st admin.Status) bool {
			return !st.Fleet.Connected
		})
		var wg sync.WaitGroup
		wg.Go(func() { l.resume(m2) })
		wg.Go(func() { l.press(m3) })
		wg.Wait()
		m3.cut(false)
		l.eventually(5*time.Second, "rolled back everywhere: the press the resume did not see wins", func(_ *labMember, st admin.Status) bool {
			return st.State == state.RolledBack && st.Fleet.Connected
		})
		time.Sleep(time.Second) // nothing undoes it
		l.eventually(time.Second, "still rolled back everywhere", rolledBack)
		l.resume(m1)
		l.eventually(2*time.Second, "resumed", serving)
	})

	t.Run("canaryd SIGKILLed and restarted rejoins with its state", func(t *testing.T) {
		l.press(m1)
		l.eventually(time.Second, "rolled back", rolledBack)
		m2.proc.cmd.Process.Signal(syscall.SIGKILL)
		<-m2.proc.done
		l.startMember(m2)
		l.eventuallyOf([]*labMember{m2}, 10*time.Second, "m2 back, rolled back and connected", func(_ *labMember, st admin.Status) bool {
			return st.State == state.RolledBack && st.Fleet.Connected
		})
		l.resume(m2)
		l.eventually(2*time.Second, "a resume from the restarted member resumed all", serving)
	})

	t.Run("a canary failing at two sites is found on the pooled counts first", func(t *testing.T) {
		// Small sites: four requests a second each, a third of them the
		// canary's, so that each site's own counts take several reports'
		// time to judge it.
		for _, m := range l.members {
			m.load.every.Store(int64(250 * time.Millisecond))
		}
		for _, m := range []*labMember{m1, m2} {
			m.v2fail.Store(math.Float64bits(0.3))
		}
		start := time.Now()
		l.eventually(60*time.Second, "rolled back by the verdict", rolledBack)
		t.Logf("a canary failing 30%% at two small sites rolled the fleet back after %s", time.Since(start).Round(100*time.Millisecond))
		var auto []string
		for _, m := range l.members {
			st, err := m.status()
			if err != nil {
				t.Fatal(err)
			}
			if st.Latch.Cause == state.CauseAuto {
				auto = append(auto, m.name)
				if st.Verdict.State != analysis.Bad || !strings.HasPrefix(st.Verdict.Reason, "on the fleet's counts") {
					t.Errorf("%s rolled back on its own counts, not the pooled ones: %s", m.name, st.Verdict.Reason)
				}
				t.Logf("%s: %s", m.name, st.Verdict.Reason)
			} else if st.Latch.Cause != state.CauseFleet {
				t.Errorf("%s rolled back by %s, want by the fleet", m.name, st.Latch.Cause)
			}
		}
		if len(auto) == 0 {
			t.Error("no member's verdict rolled the fleet back")
		}
		for _, m := range []*labMember{m1, m2} {
			m.v2fail.Store(0)
		}
		for _, m := range l.members {
			m.load.every.Store(int64(20 * time.Millisecond))
		}
	})

	t.Run("two Pis share one address with keepalived, and the backup holds the latch", func(t *testing.T) {
		// The release is rolled back (by the verdict, above). m1 and m2
		// share 10.77.0.100 by VRRP, m1 the master while its canaryd
		// answers; m1 dies as a Pi does, keepalived and canaryd at once.
		ka1 := l.keepalived(m1, 150)
		l.keepalived(m2, 100)
		testkit.Eventually(t, 10*time.Second, "m1 holds the virtual address", func() bool { return m1.hasVIP() && !m2.hasVIP() })
		m1.load.close()
		// A Pi that dies says nothing: its link goes silent first.
		m1.cut(true)
		start := time.Now()
		ka1.Process.Kill()
		m1.proc.cmd.Process.Kill()
		testkit.Eventually(t, 5*time.Second, "the address moved to m2", m2.hasVIP)
		moved := time.Since(start)
		t.Logf("the virtual address moved to the backup %s after the master died", moved.Round(time.Millisecond))
		if moved > 3*time.Second {
			t.Errorf("the address moved after %s, want within 3 s", moved)
		}
		if st, err := m2.status(); err != nil || st.State != state.RolledBack {
			t.Errorf("the backup does not hold the release's latch: %v %s", err, labStatus(st))
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: m3.ns.dial}}
		resp, err := c.Get("http://" + labVIP + ":8080/")
		if err != nil {
			t.Fatalf("a client of the virtual address: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "v1" {
			t.Errorf("the virtual address answered %s %q, want the stable v1 (rolled back)", resp.Status, body)
		}
		m1.dead = true
	})

	for _, m := range l.members {
		if !m.dead {
			m.load.close()
		}
		t.Logf("%s: %d answered, %d canary 503s passed on, %d lost", m.name, m.load.ok.Load(), m.load.failed.Load(), m.load.lost.Load())
		if n := m.load.lost.Load(); n > 0 {
			t.Errorf("%s lost %d requests: %q", m.name, n, m.load.firstLost)
		}
		if m.proc.err != nil && !m.dead {
			t.Errorf("%s exited: %v", m.name, m.proc.err)
		}
	}
}
