package fleet

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"
	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KindMember is the key each member reports itself under, member.NAME,
// once a second.
const KindMember = "member"

// reportEvery is how often a member reports: its state for canaryctl fleet
// and its counts for the others' pooled verdict.
const reportEvery = time.Second

// liveFor is how long a member counts as connected after its last report:
// three reports missed and it is not, and its counts no longer pool.
const liveFor = 3 * time.Second

// maxPooled bounds the others' ticks waiting for the verdict to take them,
// should it stop taking them: a minute of thirty members.
const maxPooled = 1800

// report is what a member puts under member.NAME.
type report struct {
	admin.FleetMember
	// Boot tells one run of canaryd from the next, whose Seq starts again.
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"`
	// Tick is what the member's verdict counted since its report before:
	// its share of the fleet's evidence.
	Tick analysis.Tick `json:"tick"`
}

// heard is the last report of one member.
type heard struct {
	report
	at      time.Time // the NATS server's time of the report
	arrived time.Time // on this member's clock; zero for one read at start
}

// remote is one report's counts for the pooled verdict.
type remote struct {
	version string
	tick    analysis.Tick
}

func addTick(a, b analysis.Tick) analysis.Tick {
	return analysis.Tick{Traffic: a.Traffic.Add(b.Traffic), Probes: a.Probes.Add(b.Probes), Slow: a.Slow.Add(b.Slow)}
}

// Exchange is the verdict's tick on this member: own, its counts, go out
// with the next report, and the counts the others reported since the last
// call come back, those of members running the canary version as this one
// does. members is how many members these pooled counts come from, this
// one included.
func (m *Member) Exchange(version string, own analysis.Tick) (others []analysis.Tick, members int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.out = addTick(m.out, own)
	for _, r := range m.pooled {
		if r.version == version {
			others = append(others, r.tick)
		}
	}
	m.pooled = m.pooled[:0]
	members = 1
	now := time.Now()
	for name, h := range m.seen {
		if name != m.name && h.live(now) && h.State == state.Canary && h.CanaryVersion == version {
			members++
		}
	}
	return others, members
}

func (h *heard) live(now time.Time) bool {
	return !h.arrived.IsZero() && now.Sub(h.arrived) < liveFor
}

// reportLoop publishes this member's report every reportEvery until ctx
// ends, on the bucket's subject for member.NAME: the others hear it as it
// is published, and the bucket keeps the last one (for a member's last
// seen) without a reply to wait for. A report that cannot go is dropped:
// counts older than a second are of no use to the others' verdict, and
// the next report says the rest.
func (m *Member) reportLoop(ctx context.Context, nc *nats.Conn) {
	subject := "$KV." + Bucket(m.cfg.Release) + "." + KindMember + "." + m.name
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := m.nextReport()
		if !nc.IsConnected() {
			continue // not queued for later: by then it is old news
		}
		b, err := json.Marshal(r)
		if err == nil {
			err = nc.Publish(subject, b)
		}
		if err != nil && ctx.Err() == nil {
			m.log.Debug("the fleet report is not sent", "error", err.Error())
		}
	}
}

// nextReport is the report due now: what the daemon says of this member,
// and the counts since the last one.
func (m *Member) nextReport() report {
	var about admin.FleetMember
	if m.about != nil {
		about = m.about()
	}
	about.Name = m.name
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	r := report{FleetMember: about, Boot: m.boot, Seq: m.seq, Tick: m.out}
	m.out = analysis.Tick{}
	m.perSecond[m.seq%uint64(len(m.perSecond))] = r.Tick.Traffic.Canary + r.Tick.Traffic.Stable
	var minute uint64
	for _, n := range m.perSecond {
		minute += n
	}
	r.RequestsPerMinute = float64(minute)
	return r
}

// hear takes a member.NAME entry from the bucket's watch; live is false
// for the values the watch starts with, whose counts are old news.
func (m *Member) hear(e jetstream.KeyValueEntry, live bool) {
	name := strings.TrimPrefix(e.Key(), KindMember+".")
	if e.Operation() != jetstream.KeyValuePut {
		m.mu.Lock()
		delete(m.seen, name)
		m.mu.Unlock()
		return
	}
	m.heard(name, e.Value(), e.Created(), live)
}

// heard takes the report value of member name, put at at: from the
// bucket's watch, or as it was published (a report a NATS node that died
// kept from the watch reaches the others so all the same). A report
// older than the one held, heard again by the other way, is passed over.
func (m *Member) heard(name string, value []byte, at time.Time, live bool) {
	var r report
	if err := json.Unmarshal(value, &r); err != nil || r.Name != name {
		return // not a member's report: nothing to show of it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, known := m.seen[name]
	if known && prev.Boot == r.Boot && r.Seq <= prev.Seq {
		return
	}
	if live && name != m.name && r.State == state.Canary {
		if len(m.pooled) >= maxPooled {
			m.pooled = slices.Delete(m.pooled, 0, len(m.pooled)-maxPooled+1)
		}
		m.pooled = append(m.pooled, remote{version: r.CanaryVersion, tick: r.Tick})
	}
	h := &heard{report: r, at: at}
	if live {
		h.arrived = time.Now()
	}
	m.seen[name] = h
}

// Members are the release's members as this one knows them, by name: each
// as it last reported itself, this one as it is now.
func (m *Member) Members() []admin.FleetMember {
	var self admin.FleetMember
	if m.about != nil {
		self = m.about()
	}
	connected := m.Connected()
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	list := make([]admin.FleetMember, 0, len(m.seen)+1)
	self.Name, self.Self, self.Connected = m.name, true, connected
	self.RequestsPerMinute = 0
	for _, n := range m.perSecond {
		self.RequestsPerMinute += float64(n)
	}
	if h, ok := m.seen[m.name]; ok && !connected {
		self.LastSeen = rfc3339(h.at)
	} else if connected {
		self.LastSeen = rfc3339(now)
	}
	list = append(list, self)
	for name, h := range m.seen {
		if name == m.name {
			continue
		}
		fm := h.FleetMember
		fm.Self, fm.Connected, fm.LastSeen = false, connected && h.live(now), rfc3339(h.at)
		list = append(list, fm)
	}
	slices.SortFunc(list, func(a, b admin.FleetMember) int { return strings.Compare(a.Name, b.Name) })
	return list
}

// Live is how many members reported in the last liveFor, this one
// included while it is connected.
func (m *Member) Live() int {
	n := 0
	if m.Connected() {
		n = 1
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, h := range m.seen {
		if name != m.name && h.live(now) {
			n++
		}
	}
	return n
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
