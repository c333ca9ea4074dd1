package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/release"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnreachable is a resume asked of a member cut off from the fleet: a
// resume the others never hear would split the release.
var ErrUnreachable = errors.New("the fleet is unreachable: resume needs it")

// ErrPromoteUnreachable is a promotion asked of a member cut off.
var ErrPromoteUnreachable = errors.New("the fleet is unreachable: promote needs it")

// Local is this member's own release (release.Controller).
type Local interface {
	Rollback(cause state.Cause) error
	Promote(cause state.Cause) error
	Resume(cause state.Cause) error
	Latch() state.Latch
}

// Member is this canary-pi in a fleet: it publishes its rollbacks to the
// release's bucket and rolls back, or resumes, when the others do. A
// rollback always happens locally first, never waiting for the network.
type Member struct {
	cfg   config.Fleet
	name  string
	local Local
	about func() admin.FleetMember // what the daemon says of this member
	log   *slog.Logger
	boot  string

	rolled chan Rollback // local rollbacks to publish

	mu        sync.Mutex
	latch     *Latch
	connected bool
	pending   []Rollback // rollbacks made while cut off
	sawLive   bool       // a rollback or promotion was live since the last resume

	seen      map[string]*heard // the members' last reports, by name
	pooled    []remote          // the others' counts, for the verdict
	out       analysis.Tick     // this member's counts since its last report
	seq       uint64            // of this member's reports
	perSecond [60]uint64        // requests in each of the last reports
}

// NewMember is the member for cfg (cfg.Enabled()); about says what this
// member is doing, for its reports. Run connects it.
func NewMember(cfg config.Fleet, about func() admin.FleetMember, log *slog.Logger) (*Member, error) {
	name := cfg.Name
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("fleet.name: no host name to default to: %w", err)
		}
		name = strings.Map(func(r rune) rune {
			if validToken(string(r)) {
				return r
			}
			return '-'
		}, strings.SplitN(h, ".", 2)[0])
	}
	return &Member{cfg: cfg, name: name, about: about, log: log, rolled: make(chan Rollback, 64),
		boot: strconv.FormatInt(time.Now().UnixNano(), 36), seen: map[string]*heard{}}, nil
}

// Name is the member's name in the fleet.
func (m *Member) Name() string { return m.name }

// Connected reports whether the member reaches the release's bucket.
func (m *Member) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected && m.latch != nil
}

// Store wraps the state directory's store: a rollback or a promotion saved
// locally is published to the fleet as well, unless the fleet caused it.
func (m *Member) Store(s release.Store) release.Store { return store{s, m} }

type store struct {
	release.Store
	m *Member
}

func (s store) Save(l state.Latch) error {
	err := s.Store.Save(l)
	if r, ok := own(l); ok {
		select {
		case s.m.rolled <- r:
		default:
			s.m.log.Warn("the fleet is not told of a rollback: too many waiting", "ROLLBACK", r.ID)
		}
	}
	return err
}

// own is the bucket's entry for a latch this member set itself, if it
// holds a rollback or a promotion. Its id is the latch's time, so that the
// same latch read back after a restart is the same entry.
func own(l state.Latch) (Rollback, bool) {
	kind := map[state.Mode]string{state.RolledBack: KindRollback, state.Promoted: KindPromote}[l.Mode]
	if kind == "" || l.Cause == state.CauseFleet {
		return Rollback{}, false
	}
	return Rollback{Kind: kind, ID: strconv.FormatInt(l.At.UnixNano(), 10), Cause: string(l.Cause), At: l.At}, true
}

// Promote promotes the whole release: this member's latch, which its store
// publishes. Cut off, it refuses, as a promotion the others never hear
// would split the release.
func (m *Member) Promote(cause state.Cause) error {
	m.mu.Lock()
	ok, local := m.connected && m.latch != nil, m.local
	m.mu.Unlock()
	if !ok {
		return ErrPromoteUnreachable
	}
	return local.Promote(cause)
}

// Resume resumes the whole release: the rollbacks and promotions this
// member sees in the bucket are removed, then its own latch. Cut off, it
// refuses.
func (m *Member) Resume(ctx context.Context, cause state.Cause) error {
	m.mu.Lock()
	l, ok, local := m.latch, m.connected, m.local
	m.mu.Unlock()
	if l == nil || !ok {
		return ErrUnreachable
	}
	if _, err := l.Resume(ctx); err != nil {
		return fmt.Errorf("%w (%v)", ErrUnreachable, err)
	}
	return local.Resume(cause)
}

// Run connects to NATS and keeps local, this member's release, in step
// with the fleet until ctx ends, reconnecting for as long as it takes.
func (m *Member) Run(ctx context.Context, local Local) error {
	m.mu.Lock()
	m.local = local
	m.mu.Unlock()
	opts := []nats.Option{
		nats.Name("canaryd " + m.name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { m.setConnected(false) }),
		nats.ReconnectHandler(func(*nats.Conn) { m.setConnected(true) }),
	}
	if m.cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(m.cfg.Credentials))
	}
	if m.cfg.TokenFile != "" {
		b, err := os.ReadFile(m.cfg.TokenFile)
		if err != nil {
			return fmt.Errorf("fleet.token_file: %w", err)
		}
		opts = append(opts, nats.Token(strings.TrimSpace(string(b))))
	}
	if m.cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(m.cfg.CAFile))
	}
	nc, err := nats.Connect(strings.Join(m.cfg.Servers, ","), opts...)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	defer nc.Close()
	m.setConnected(nc.IsConnected())
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	for ctx.Err() == nil {
		err := m.follow(ctx, js)
		if ctx.Err() != nil {
			break
		}
		m.log.Warn("the fleet's bucket is out of reach; trying again", "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (m *Member) setConnected(c bool) {
	m.mu.Lock()
	m.connected = c
	m.mu.Unlock()
}

// follow opens the bucket, publishes what waited, and then publishes the
// local rollbacks and acts on the bucket's changes until an error.
func (m *Member) follow(ctx context.Context, js jetstream.JetStream) error {
	oc, cancel := context.WithTimeout(ctx, 10*time.Second)
	l, err := Open(oc, js, m.cfg.Release, m.name, 0)
	cancel()
	if err != nil {
		return err
	}
	w, err := l.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("fleet: watching the bucket: %w", err)
	}
	defer w.Stop()
	rc, stopReports := context.WithCancel(ctx)
	defer stopReports()
	go m.reportLoop(rc, l)
	m.mu.Lock()
	m.latch, m.connected = l, true
	pending := m.pending
	m.pending = nil
	m.mu.Unlock()
	// The latch this member set while away, or before a restart: told to
	// the fleet unless a resume had seen it.
	if r, ok := own(m.local.Latch()); ok {
		pending = append(pending, r)
	}
	if n, err := l.Republish(ctx, pending); err != nil {
		m.keep(pending)
		return err
	} else if n > 0 {
		m.log.Info("rollbacks made while cut off told to the fleet", "ROLLBACKS", n)
	}
	live := map[string]bool{} // the live rollback.* and promote.* keys
	synced := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-m.rolled:
			pc, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := l.Add(pc, r)
			cancel()
			if err != nil {
				m.keep([]Rollback{r})
				m.log.Warn("a rollback is kept to tell the fleet later", "ROLLBACK", r.ID, "error", err.Error())
			}
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the bucket's watch ended")
			}
			switch {
			case e == nil: // the initial values are in
				synced = true
			case strings.HasPrefix(e.Key(), KindMember+"."):
				m.hear(e, synced)
				continue
			case !strings.HasPrefix(e.Key(), KindRollback+".") && !strings.HasPrefix(e.Key(), KindPromote+"."):
			case e.Operation() == jetstream.KeyValuePut:
				live[e.Key()] = true
			default:
				delete(live, e.Key())
			}
			if synced {
				m.reconcile(live)
			}
		}
	}
}

func (m *Member) keep(rs []Rollback) {
	m.mu.Lock()
	m.pending = append(m.pending, rs...)
	m.mu.Unlock()
}

// reconcile brings the local latch in step with the bucket's live keys: a
// live rollback rolls back here too; a live promotion, with no rollback,
// promotes; the last of them removed by a resume resumes here.
func (m *Member) reconcile(live map[string]bool) {
	var rollback, promote bool
	for k := range live {
		rollback = rollback || strings.HasPrefix(k, KindRollback+".")
		promote = promote || strings.HasPrefix(k, KindPromote+".")
	}
	m.mu.Lock()
	saw := m.sawLive
	m.sawLive = rollback || promote
	m.mu.Unlock()
	var err error
	switch mode := m.local.Latch().Mode; {
	case rollback && mode != state.RolledBack:
		err = m.local.Rollback(state.CauseFleet)
	case !rollback && promote && mode != state.Promoted:
		err = m.local.Promote(state.CauseFleet)
	case !rollback && !promote && saw && mode != "":
		err = m.local.Resume(state.CauseFleet)
	}
	if err != nil {
		m.log.Error("the fleet acted, but this member could not follow", "error", err.Error())
	}
}
