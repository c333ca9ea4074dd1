package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/incident"
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

// A member pings its NATS server every pingEvery and counts itself cut off
// after pingsMissed answers missed.
const (
	pingEvery   = time.Second
	pingsMissed = 3
)

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

	rolled    chan Rollback         // local rollbacks to publish
	incidents chan incident.Summary // local incident reports to tell
	reports   release.Reports       // the local reports, once Reports wrapped them
	// published are the bucket's puts as they are published: the
	// watch's stored changes arrive later, and after a NATS node dies the
	// watch may wait seconds for its consumer to be made anew.
	published chan *nats.Msg
	back      chan struct{} // the connection is back after a loss
	// removed is a removal seen published: the watch may be seconds late
	// with it, so the bucket is read again.
	removed chan struct{}

	mu        sync.Mutex
	nc        *nats.Conn // set once Run connects
	latch     *Latch
	connected bool
	pending   []Rollback // rollbacks made while cut off
	sawLive   bool       // a rollback or promotion was live since the last resume
	// watched are the live rollback.* and promote.* keys as the bucket's
	// watch brought them, each at its revision: what a resume removes.
	watched map[string]uint64
	brought map[string]bool // every key the watch brought, put or removed

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
	return &Member{cfg: cfg, name: name, about: about, log: log,
		rolled: make(chan Rollback, 64), incidents: make(chan incident.Summary, 16),
		published: make(chan *nats.Msg, 256), back: make(chan struct{}, 1), removed: make(chan struct{}, 1),
		boot: strconv.FormatInt(time.Now().UnixNano(), 36), seen: map[string]*heard{}, brought: map[string]bool{}}, nil
}

// Name is the member's name in the fleet.
func (m *Member) Name() string { return m.name }

// Server is the NATS server the member is connected to, "" while it is
// not.
func (m *Member) Server() string {
	m.mu.Lock()
	nc := m.nc
	m.mu.Unlock()
	if nc == nil || !m.Connected() {
		return ""
	}
	return nc.ConnectedUrlRedacted()
}

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
		s.m.announce(r)
		select {
		case s.m.rolled <- r:
		default:
			s.m.log.Warn("the fleet is not told of a rollback: too many waiting", "ROLLBACK", r.ID)
		}
	}
	return err
}

// announce publishes a rollback on the bucket's subject at once, without
// waiting for the bucket to take it: the others act on it as it is
// published (early), also while the bucket has no leader, and the bucket
// keeps it if it can. The acknowledged put follows, and is retried until
// the bucket has it. A promotion waits for the bucket: it needs the fleet.
func (m *Member) announce(r Rollback) {
	m.mu.Lock()
	nc := m.nc
	if r.kind() == KindRollback {
		// Live as far as this member knows: a read of the bucket without
		// it (a resume elsewhere saw it) resumes this member too.
		m.sawLive = true
	}
	m.mu.Unlock()
	if nc == nil || r.kind() != KindRollback {
		return
	}
	r.Member = m.name
	b, err := json.Marshal(r)
	if err == nil {
		err = nc.Publish("$KV."+Bucket(m.cfg.Release)+"."+r.key(), b)
	}
	if err != nil {
		m.log.Debug("a rollback is not announced", "error", err.Error())
	}
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

// Resume resumes the whole release: the rollbacks and promotions in the
// bucket are removed, each at the revision read (from the bucket, or
// what this member's watch brought when the bucket cannot be read in
// time), then this member's own latch. One not seen yet stays, and rolls
// the fleet back again when it arrives. Cut off, it refuses.
func (m *Member) Resume(ctx context.Context, cause state.Cause) error {
	m.mu.Lock()
	l, ok, local, seen := m.latch, m.connected, m.local, maps.Clone(m.watched)
	m.mu.Unlock()
	if l == nil || !ok {
		return ErrUnreachable
	}
	ctx, cancel := context.WithTimeout(ctx, resumeFor)
	defer cancel()
	// The bucket read now sees more than the watch, which may lag: with a
	// NATS node just gone, by seconds.
	rc, cancelRead := context.WithTimeout(ctx, resumeFor/2)
	read := "the bucket"
	if live, _, err := l.Snapshot(rc); err == nil {
		seen = live
	} else {
		read = "this member's watch (the bucket: " + err.Error() + ")"
	}
	cancelRead()
	removed, err := l.Remove(ctx, seen)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrUnreachable, err)
	}
	m.log.Info(fmt.Sprintf("the fleet resumed: %d of %d rollbacks and promotions removed, as read from %s", len(removed), len(seen), read),
		"REMOVED", strings.Join(removed, " "))
	return local.Resume(cause)
}

// recheckEvery is how often a member the fleet holds rolled back reads the
// bucket, in case its watch missed the resume.
const recheckEvery = 5 * time.Second

// rereadAfter is how long after a removal seen published the bucket is
// read again: time for the bucket to take it.
const rereadAfter = 300 * time.Millisecond

// resumeFor bounds how long a resume waits for the bucket: long enough
// for a NATS cluster to elect a new leader for it when a node died.
const resumeFor = 8 * time.Second

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
		// A link that goes down without a word (a cable, Wi-Fi) is found
		// within a few seconds, not the two minutes of NATS's default: a
		// member cut off must say so, and refuse a resume, soon.
		nats.PingInterval(pingEvery),
		nats.MaxPingsOutstanding(pingsMissed),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { m.setConnected(false) }),
		nats.ReconnectHandler(func(*nats.Conn) {
			m.setConnected(true)
			select {
			case m.back <- struct{}{}:
			default:
			}
		}),
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
	m.mu.Lock()
	m.nc = nc
	m.mu.Unlock()
	m.setConnected(nc.IsConnected())
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	sub, err := nc.Subscribe("$KV."+Bucket(m.cfg.Release)+".>", func(msg *nats.Msg) {
		select {
		case m.published <- msg:
		default: // the watch brings it too
		}
	})
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	defer sub.Unsubscribe()
	// Apart from the watch, which stops while the bucket is read afresh.
	go m.reportLoop(ctx, nc)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case msg := <-m.published:
				m.early(msg)
			}
		}
	}()
	for ctx.Err() == nil {
		err := m.follow(ctx, js)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errReconnected) {
			continue
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
	m.mu.Lock()
	m.latch, m.connected = l, true
	m.mu.Unlock()
	rc, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = m.republish(rc, l, true)
	cancel()
	if err != nil {
		return err
	}
	if m.reports != nil {
		m.tellNewestIncidents(ctx, l, m.reports)
	}
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	var reread <-chan time.Time // when to read the bucket again
	var upTo uint64             // the revision the last read was complete to
	lastRead := time.Now()      // when the bucket was last read whole
	live := map[string]uint64{} // the live rollback.* and promote.* keys, at their revisions
	synced := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-m.rolled:
			pc, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := l.Add(pc, r)
			cancel()
			if err != nil {
				m.keep([]Rollback{r})
				m.log.Warn("a rollback is kept to tell the fleet later", "ROLLBACK", r.ID, "error", err.Error())
			}
		case <-m.back:
			// The watch may have lost what was put meanwhile, for seconds:
			// the bucket is read afresh, and what waited is told.
			return errReconnected
		case sum := <-m.incidents:
			if err := m.tellIncident(ctx, l, sum); err != nil {
				m.log.Warn("the fleet is not told of an incident report", "INCIDENT", sum.ID, "error", err.Error())
			}
		case <-m.removed:
			// After the removal is in the bucket: it was seen as it was
			// published, before the bucket took it (or refused it).
			reread = time.After(rereadAfter)
		case <-reread:
			reread = nil
			if !m.Connected() {
				continue // the reconnection reads the bucket afresh
			}
			rc, cancel := context.WithTimeout(ctx, time.Second)
			snap, at, err := l.Snapshot(rc)
			cancel()
			if err != nil {
				m.log.Debug("the bucket cannot be read again yet", "error", err.Error())
				reread = time.After(rereadAfter)
				continue
			}
			live, upTo, lastRead = snap, at, time.Now()
			m.mu.Lock()
			m.watched = maps.Clone(live)
			m.mu.Unlock()
			if synced {
				m.reconcile(live)
			}
		case now := <-retry.C:
			// Held rolled back by the fleet, the member checks the bucket
			// now and then: its watch may lag behind a resume for as long
			// as a NATS node that held its consumer stays down.
			if m.local.Latch().Cause == state.CauseFleet && now.Sub(lastRead) >= recheckEvery && reread == nil {
				reread = time.After(0)
			}
			if m.hasPending() && m.Connected() {
				rc, cancel := context.WithTimeout(ctx, time.Second)
				err := m.republish(rc, l, false)
				cancel()
				if err != nil {
					m.log.Warn("rollbacks wait to be told to the fleet", "error", err.Error())
				}
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
			case e.Revision() <= upTo: // in the last read already
			case e.Operation() == jetstream.KeyValuePut:
				live[e.Key()] = e.Revision()
			default:
				delete(live, e.Key())
			}
			m.mu.Lock()
			m.watched = maps.Clone(live)
			if e != nil && strings.HasPrefix(e.Key(), KindRollback+".") {
				m.brought[e.Key()] = true
			}
			m.mu.Unlock()
			if synced {
				m.reconcile(live)
			}
		}
	}
}

// early acts on a put to the bucket as it is published, before the watch
// brings it: a rollback rolls back here at once, a report is heard. A
// removal waits for the watch, as only the bucket knows whether it took:
// a resume's removal of a rollback put again meanwhile is refused there.
// A rollback the watch brought already (and a resume maybe removed) is
// old news.
func (m *Member) early(msg *nats.Msg) {
	key := strings.TrimPrefix(msg.Subject, "$KV."+Bucket(m.cfg.Release)+".")
	if op := msg.Header.Get("KV-Operation"); op != "" { // DEL or PURGE
		if !strings.HasPrefix(key, KindMember+".") {
			select {
			case m.removed <- struct{}{}:
			default:
			}
		}
		return
	}
	switch {
	case strings.HasPrefix(key, KindMember+"."):
		m.heard(strings.TrimPrefix(key, KindMember+"."), msg.Data, time.Now(), true)
	case strings.HasPrefix(key, KindRollback+"."):
		m.mu.Lock()
		old := m.brought[key]
		if !old {
			// Live as far as this member knows: when the bucket is read
			// without it (a resume removed it, or the bucket never took
			// it), this member resumes with the rest.
			m.sawLive = true
		}
		m.mu.Unlock()
		if !old && m.local.Latch().Mode != state.RolledBack {
			if err := m.local.Rollback(state.CauseFleet); err != nil {
				m.log.Error("the fleet rolled back, but this member could not follow", "error", err.Error())
			}
		}
	}
}

// errReconnected ends a follow when the connection is back after a loss.
var errReconnected = errors.New("fleet: reconnected")

func (m *Member) hasPending() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending) > 0
}

// republish tells the fleet the rollbacks this member could not tell it
// (cut off, or while the bucket had no leader), and with latch the one
// it holds (set while away, or before a restart), unless a resume had
// seen them.
func (m *Member) republish(ctx context.Context, l *Latch, latch bool) error {
	m.mu.Lock()
	pending := m.pending
	m.pending = nil
	m.mu.Unlock()
	if r, ok := own(m.local.Latch()); ok && latch {
		pending = append(pending, r)
	}
	n, err := l.Republish(ctx, pending)
	if err != nil {
		m.keep(pending)
		return err
	}
	if n > 0 {
		m.log.Info("rollbacks made while cut off told to the fleet", "ROLLBACKS", n)
	}
	return nil
}

func (m *Member) keep(rs []Rollback) {
	m.mu.Lock()
	m.pending = append(m.pending, rs...)
	m.mu.Unlock()
}

// reconcile brings the local latch in step with the bucket's live keys: a
// live rollback rolls back here too; a live promotion, with no rollback,
// promotes; the last of them removed by a resume resumes here.
func (m *Member) reconcile(live map[string]uint64) {
	var rollback, promote bool
	for k := range live {
		rollback = rollback || strings.HasPrefix(k, KindRollback+".")
		promote = promote || strings.HasPrefix(k, KindPromote+".")
	}
	m.mu.Lock()
	saw := m.sawLive && len(m.pending) == 0 // a rollback not told yet is not resumed
	m.sawLive = m.sawLive && !saw || rollback || promote
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
