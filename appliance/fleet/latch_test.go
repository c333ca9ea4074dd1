package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/admin"

	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/release"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/internal/testkit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// member opens the release's latch as member name, on its own connection.
func member(t *testing.T, url, name string) *Latch {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Open(ctx, js, "shop", name, 1)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func rolledBack(t *testing.T, l *Latch) bool {
	t.Helper()
	b, err := l.RolledBack(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestARollbackOnOneMemberIsSeenByAllAndAResumeEndsIt(t *testing.T) {
	url := testkit.NATSServer(t)
	a, b, c := member(t, url, "a"), member(t, url, "b"), member(t, url, "c")
	if rolledBack(t, b) {
		t.Fatal("a new release is rolled back")
	}
	if _, err := a.Add(ctx(t), Rollback{ID: "1", Cause: "button", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Latch{a, b, c} {
		if !rolledBack(t, m) {
			t.Errorf("member %s does not see a's rollback", m.member)
		}
	}
	removed, err := c.Resume(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Member != "a" || removed[0].Cause != "button" {
		t.Errorf("the resume removed %+v, want a's button rollback", removed)
	}
	for _, m := range []*Latch{a, b, c} {
		if rolledBack(t, m) {
			t.Errorf("member %s is still rolled back after the resume", m.member)
		}
	}
}

// The rule of the package doc, raced: a rollback and a resume at the same
// moment on two members. Whatever the order the server saw them in, a
// rollback the resume did not observe is live afterwards, and one it did
// observe is gone.
func TestARollbackRacingAResumeSurvivesUnlessTheResumeSawIt(t *testing.T) {
	url := testkit.NATSServer(t)
	a, b := member(t, url, "a"), member(t, url, "b")
	survived, removedByResume := 0, 0
	for i := range 60 {
		// An older rollback both members know, which the resume removes.
		if _, err := b.Add(ctx(t), Rollback{ID: fmt.Sprintf("old%d", i), Cause: "command"}); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("r%d", i)
		var wg sync.WaitGroup
		var removed []Rollback
		var addErr, resumeErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, addErr = a.Add(ctx(t), Rollback{ID: id, Cause: "button"}) }()
		go func() { defer wg.Done(); removed, resumeErr = b.Resume(ctx(t)) }()
		wg.Wait()
		if addErr != nil || resumeErr != nil {
			t.Fatal(addErr, resumeErr)
		}
		saw := false
		for _, r := range removed {
			saw = saw || (r.Member == "a" && r.ID == id)
		}
		live, err := a.Live(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		isLive := false
		for _, r := range live {
			isLive = isLive || (r.Member == "a" && r.ID == id)
			if r.ID == fmt.Sprintf("old%d", i) {
				t.Fatalf("round %d: the rollback both knew survived the resume", i)
			}
		}
		if saw == isLive {
			t.Fatalf("round %d: the resume saw a's rollback: %v; it is live: %v", i, saw, isLive)
		}
		if isLive {
			survived++
			if _, err := b.Resume(ctx(t)); err != nil { // a person resumes again, having seen it
				t.Fatal(err)
			}
		} else {
			removedByResume++
		}
	}
	t.Logf("60 races: the rollback survived %d times (the resume had not seen it), was removed %d times", survived, removedByResume)
}

// A member cut off from the bucket rolls back on its own; meanwhile a
// resume elsewhere ends the rollbacks it can see. Back, the member
// publishes its rollback and the release is rolled back everywhere; one of
// its rollbacks a resume had seen and removed is not brought back.
func TestAMemberBackFromAPartitionBringsItsRollbackButNotOneAResumeSaw(t *testing.T) {
	url := testkit.NATSServer(t)
	a, b := member(t, url, "a"), member(t, url, "b")
	seen := Rollback{ID: "seen", Cause: "button"}
	if _, err := a.Add(ctx(t), seen); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Resume(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Cut off: a's second rollback is only in its own state dir.
	offline := Rollback{ID: "offline", Cause: "button"}
	if _, err := b.Resume(ctx(t)); err != nil { // the resume elsewhere sees nothing of it
		t.Fatal(err)
	}
	if rolledBack(t, b) {
		t.Fatal("rolled back before a came back")
	}
	n, err := a.Republish(ctx(t), []Rollback{seen, offline})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("republished %d rollbacks, want 1 (the one the bucket never had)", n)
	}
	live, err := b.Live(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 {
		t.Fatalf("live rollbacks %+v, want only a's offline one", live)
	}
	for _, r := range live {
		if r.ID != "offline" || r.Member != "a" {
			t.Errorf("live rollback %+v, want a's offline one", r)
		}
	}
}

func TestANameWithADotIsRefused(t *testing.T) {
	for _, n := range []string{"shop.1", "", "a b", "pi>"} {
		if validToken(n) {
			t.Errorf("%q accepted as a member's name", n)
		}
	}
	if !validToken("pi-3_b") {
		t.Error("pi-3_b refused")
	}
}

// fakeLocal is a member's own release: its latch, and the actions taken on
// it, through the fleet's store as the controller saves it.
type fakeLocal struct {
	mu    sync.Mutex
	store release.Store
	latch state.Latch
	acts  []string
}

func (f *fakeLocal) set(mode state.Mode, cause state.Cause) error {
	f.mu.Lock()
	f.latch = state.Latch{Mode: mode, Cause: cause, At: time.Now()}
	f.acts = append(f.acts, string(mode)+" by "+string(cause))
	l := f.latch
	f.mu.Unlock()
	return f.store.Save(l)
}
func (f *fakeLocal) Rollback(c state.Cause) error { return f.set(state.RolledBack, c) }
func (f *fakeLocal) Promote(c state.Cause) error  { return f.set(state.Promoted, c) }
func (f *fakeLocal) Resume(c state.Cause) error   { return f.set("", c) }
func (f *fakeLocal) Latch() state.Latch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latch
}
func (f *fakeLocal) Latched() state.Mode { return f.Latch().Mode }
func (f *fakeLocal) RolledBack() bool    { return f.Latched() == state.RolledBack }

// nopStore is a state directory that keeps nothing.
type nopStore struct{ release.Store }

func (nopStore) Save(state.Latch) error { return nil }

func runMember(t *testing.T, url, name string) (*Member, *fakeLocal) {
	t.Helper()
	return runMemberFrom(t, url, name, state.Latch{})
}

// runMemberFrom is runMember with the latch its state directory kept.
func runMemberFrom(t *testing.T, url, name string, kept state.Latch) (*Member, *fakeLocal) {
	t.Helper()
	return runMemberAbout(t, url, name, kept, nil)
}

// runMemberAbout is runMemberFrom with what the member says of itself.
func runMemberAbout(t *testing.T, url, name string, kept state.Latch, about func() admin.FleetMember) (*Member, *fakeLocal) {
	t.Helper()
	local := &fakeLocal{latch: kept}
	m, err := NewMember(config.Fleet{Servers: []string{url}, Name: name, Release: "shop"}, about, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	local.store = m.Store(nopStore{})
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(c, local) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.Eventually(t, 10*time.Second, name+" connected", m.Connected)
	return m, local
}

func TestAButtonOnOneMemberRollsBackTheOthersAndAResumeAnywhereResumesAll(t *testing.T) {
	url := testkit.NATSServer(t)
	a, la := runMember(t, url, "a")
	_, lb := runMember(t, url, "b")
	_, lc := runMember(t, url, "c")
	start := time.Now()
	if err := la.Rollback(state.CauseButton); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLocal{lb, lc} {
		testkit.Eventually(t, 2*time.Second, "the others rolled back", l.RolledBack)
	}
	t.Logf("b and c rolled back %v after a's button", time.Since(start).Round(time.Millisecond))
	if err := a.Resume(ctx(t), state.CauseCommand); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLocal{la, lb, lc} {
		testkit.Eventually(t, 2*time.Second, "every member resumed", func() bool { return !l.RolledBack() })
	}
	if got := lb.acts; len(got) != 2 || got[0] != "rolled_back by fleet" || got[1] != " by fleet" {
		t.Errorf("b's latch: %q, want rolled back then resumed, both by the fleet", got)
	}

	// A promotion on one member promotes all; a rollback after it wins.
	if err := a.Promote(state.CauseCommand); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLocal{lb, lc} {
		testkit.Eventually(t, 2*time.Second, "the others promoted", func() bool { return l.Latched() == state.Promoted })
	}
	if err := lc.Rollback(state.CauseButton); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLocal{la, lb} {
		testkit.Eventually(t, 2*time.Second, "a rollback after the promotion rolled the others back", l.RolledBack)
	}
}

func TestAResumeOnAMemberCutOffIsRefused(t *testing.T) {
	m, err := NewMember(config.Fleet{Servers: []string{"nats://127.0.0.1:1"}, Name: "a", Release: "shop"}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Resume(ctx(t), state.CauseCommand); !errors.Is(err, ErrUnreachable) || err.Error() != "the fleet is unreachable: resume needs it" {
		t.Errorf("resume cut off: %v, want %q", err, ErrUnreachable)
	}
	if err := m.Promote(state.CauseCommand); !errors.Is(err, ErrPromoteUnreachable) {
		t.Errorf("promote cut off: %v, want %q", err, ErrPromoteUnreachable)
	}
}

// A member that rolled back while it was away (cut off, or stopped) tells
// the fleet when it joins; a rollback the fleet already resumed is not
// brought back by its restart.
func TestAMemberJoiningWithARollbackOfItsOwnRollsBackTheFleetOnce(t *testing.T) {
	url := testkit.NATSServer(t)
	_, lb := runMember(t, url, "b")
	kept := state.Latch{Mode: state.RolledBack, Cause: state.CauseButton, At: time.Now()}
	a, _ := runMemberFrom(t, url, "a", kept)
	testkit.Eventually(t, 2*time.Second, "b rolled back by a's rollback from before it joined", lb.RolledBack)
	if err := a.Resume(ctx(t), state.CauseCommand); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, "b resumed", func() bool { return !lb.RolledBack() })
	// a restarts with the same latch on disk (it was stopped before its
	// own resume was saved): the fleet had seen and resumed that rollback.
	runMemberFrom(t, url, "a", kept)
	time.Sleep(500 * time.Millisecond) // a has joined and republished nothing
	if lb.RolledBack() {
		t.Error("a restart brought back a rollback the fleet had resumed")
	}
}
