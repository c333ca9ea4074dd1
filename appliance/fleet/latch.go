// Package fleet shares one release's rollback latch among the canary-pis
// that serve it, in a NATS JetStream key-value bucket: a button pressed on
// any of them stops the release on all.
//
// The rule that keeps a partition from undoing a rollback: rollbacks are an
// add-wins set. Each rollback (a button, canaryctl, the verdict; on any
// member) adds a key of its own, rollback.MEMBER.ID. A resume removes
// exactly the rollback keys it observed, each at the revision it observed.
// A rollback the resume did not see, because it was made at the same moment
// or by a member cut off from the bucket that publishes it when it is back,
// survives the resume: the release is rolled back while any rollback key is
// live. A member that comes back publishes its own rollbacks only if the
// bucket never had them; one a resume saw and removed stays removed.
//
// A promotion is kept the same way (promote.MEMBER.ID) and is in force
// while one is live and no rollback is: a rollback wins over a promotion,
// as it does on one Pi. A resume removes the promotions it observed too.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Kinds of action the bucket keeps.
const (
	KindRollback = "rollback"
	KindPromote  = "promote"
)

// Rollback is one rollback (or, with Kind promote, one promotion), as it is
// kept in the bucket.
type Rollback struct {
	Kind   string    `json:"kind,omitempty"` // "" is KindRollback
	Member string    `json:"member"`
	ID     string    `json:"id"`
	Cause  string    `json:"cause"` // button | command | auto | api
	At     time.Time `json:"at"`
}

func (r Rollback) kind() string {
	if r.Kind == "" {
		return KindRollback
	}
	return r.Kind
}

func (r Rollback) key() string { return r.kind() + "." + r.Member + "." + r.ID }

// Latch is a member's handle on the release's shared latch.
type Latch struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's, for its keys
	member string
}

// Bucket names the release's bucket: one per release, so that members with
// the same release share it.
func Bucket(release string) string { return "canary-pi-" + release }

// Open binds the release's bucket, creating it if it does not exist yet
// with replicas copies; 0 is as many as the NATS cluster holds, up to 3
// (one on a single server).
func Open(ctx context.Context, js jetstream.JetStream, release, member string, replicas int) (*Latch, error) {
	if !validToken(member) || !validToken(release) {
		return nil, fmt.Errorf("fleet: %q / %q: a member's name and a release are letters, digits, - and _", member, release)
	}
	kv, err := js.KeyValue(ctx, Bucket(release))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = create(ctx, js, release, replicas)
	}
	var s jetstream.Stream
	if err == nil {
		kv, s, err = leaderReads(ctx, js, kv)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", Bucket(release), err)
	}
	return &Latch{kv: kv, stream: s, member: member}, nil
}

// leaderReads makes the bucket's reads go to its leader: a read served by
// any replica (NATS's direct get, the default) may come from one that
// lags or, back after a crash, differs, and a resume removing a rollback
// at the revision such a read gave would leave it in place.
func leaderReads(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) (jetstream.KeyValue, jetstream.Stream, error) {
	s, err := js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return nil, nil, err
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect {
		return kv, s, nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nil, nil, err
	}
	kv, err = js.KeyValue(ctx, kv.Bucket())
	return kv, s, err
}

// Keys are the bucket's keys of a kind that have a message, live or
// removed, as the bucket's leader knows them. A listing of keys by a
// consumer would do as well, but a consumer may be placed on a NATS node
// that is down, and the listing then waits for it.
func (l *Latch) Keys(ctx context.Context, kind string) ([]string, error) {
	prefix := "$KV." + l.kv.Bucket() + "."
	info, err := l.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+kind+".>"))
	if err != nil {
		return nil, fmt.Errorf("fleet: listing %ss: %w", kind, err)
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		keys = append(keys, strings.TrimPrefix(subject, prefix))
	}
	slices.Sort(keys)
	return keys, nil
}

// create makes the release's bucket with replicas copies; with 0, three,
// or one where the NATS servers are fewer than three (a cluster too small
// for three is refused as no suitable peers, a single server as not
// clustered).
func create(ctx context.Context, js jetstream.JetStream, release string, replicas int) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      Bucket(release),
		Description: "canary-pi release " + release + ": its rollback latch and its members",
		History:     1,
		Replicas:    replicas,
	}
	if replicas > 0 {
		return js.CreateKeyValue(ctx, cfg)
	}
	cfg.Replicas = 3
	kv, err := js.CreateKeyValue(ctx, cfg)
	var apiErr *jetstream.APIError
	if !errors.Is(err, jetstream.ErrBucketExists) && errors.As(err, &apiErr) {
		cfg.Replicas = 1
		kv, err = js.CreateKeyValue(ctx, cfg)
	}
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, Bucket(release)) // made by another member meanwhile
	}
	return kv, err
}

// validToken reports whether s can be one token of a subject: NATS keys are
// dot-separated, so a name with a dot would read as two.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Add publishes this member's rollback (or promotion), unless the bucket
// has had it already: put as it was announced, or put and then removed by
// a resume, which must not be undone by a late put of the same. The
// caller has acted locally already: Add is how the others hear of it,
// never a condition for it. It reports whether the bucket took it now.
func (l *Latch) Add(ctx context.Context, r Rollback) (bool, error) {
	r.Member = l.member
	if !validToken(r.ID) {
		return false, fmt.Errorf("fleet: rollback id %q: letters, digits, - and _", r.ID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	// Revision 0: only a key the bucket never had.
	_, err = l.kv.Update(ctx, r.key(), b, 0)
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return false, nil
	}
	return false, fmt.Errorf("fleet: publishing %s %s: %w", r.kind(), r.ID, err)
}

// Republish publishes this member's rollbacks made while it was cut off,
// except those the bucket has had already: a rollback a resume saw and
// removed is not brought back. It returns how many it published.
func (l *Latch) Republish(ctx context.Context, mine []Rollback) (int, error) {
	n := 0
	for _, r := range mine {
		took, err := l.Add(ctx, r)
		if err != nil {
			return n, err
		}
		if took {
			n++
		}
	}
	return n, nil
}

// Live are the rollbacks and promotions in the bucket now, each with the
// revision a resume removes it at.
func (l *Latch) Live(ctx context.Context) (map[uint64]Rollback, error) {
	live := map[uint64]Rollback{}
	// One filter a call: several in one need nats-server 2.10.
	for _, kind := range []string{KindRollback, KindPromote} {
		if err := l.live(ctx, kind, live); err != nil {
			return nil, err
		}
	}
	return live, nil
}

func (l *Latch) live(ctx context.Context, kind string, live map[uint64]Rollback) error {
	keys, err := l.Keys(ctx, kind)
	if err != nil {
		return err
	}
	for _, k := range keys {
		e, err := l.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // removed since it was listed
		}
		if err != nil {
			return fmt.Errorf("fleet: %s %s: %w", kind, k, err)
		}
		var r Rollback
		if err := json.Unmarshal(e.Value(), &r); err != nil || r.key() != k {
			r = Rollback{Kind: kind, Member: memberOf(k), ID: k[strings.LastIndexByte(k, '.')+1:]}
		}
		live[e.Revision()] = r
	}
	return nil
}

func memberOf(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) == 3 {
		return parts[1]
	}
	return ""
}

// Snapshot are the live rollbacks' and promotions' keys at their
// revisions, and the bucket's last revision before they were read: every
// change up to it is in them.
func (l *Latch) Snapshot(ctx context.Context) (live map[string]uint64, upTo uint64, err error) {
	st, err := l.kv.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("fleet: the bucket's status: %w", err)
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		upTo = bs.StreamInfo().State.LastSeq
	}
	revs, err := l.Live(ctx)
	if err != nil {
		return nil, 0, err
	}
	live = make(map[string]uint64, len(revs))
	for rev, r := range revs {
		live[r.key()] = rev
	}
	return live, upTo, nil
}

// RolledBack reports whether any rollback is live.
func (l *Latch) RolledBack(ctx context.Context) (bool, error) {
	live, err := l.Live(ctx)
	for _, r := range live {
		if r.kind() == KindRollback {
			return true, err
		}
	}
	return false, err
}

// Resume removes the rollbacks and promotions it observes, each at the
// revision observed; one added meanwhile stays. It returns the ones it
// removed.
func (l *Latch) Resume(ctx context.Context) ([]Rollback, error) {
	live, err := l.Live(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]uint64, len(live))
	for rev, r := range live {
		seen[r.key()] = rev
	}
	gone, err := l.Remove(ctx, seen)
	var removed []Rollback
	for _, r := range live {
		if slices.Contains(gone, r.key()) {
			removed = append(removed, r)
		}
	}
	return removed, err
}

// removeRetry is how long Remove waits between tries while the bucket
// cannot take a removal: a NATS node that died held the bucket's leader,
// and the others are electing a new one.
const removeRetry = 250 * time.Millisecond

// Remove removes the keys seen, each at the revision it was seen at: a
// resume of what a member observed (a listing, or its watch). A key put
// again since is not removed, and stays. It tries until ctx ends and
// returns the keys it removed.
func (l *Latch) Remove(ctx context.Context, seen map[string]uint64) ([]string, error) {
	var removed []string
	for key, rev := range seen {
		for {
			err := l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
			var apiErr *jetstream.APIError
			switch {
			case err == nil:
				removed = append(removed, key)
			case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
				// Put again since it was observed: a rollback this
				// resume did not see, which stays.
			default:
				select {
				case <-ctx.Done():
					return removed, fmt.Errorf("fleet: removing %s: %w", key, err)
				case <-time.After(removeRetry):
					continue
				}
			}
			break
		}
	}
	return removed, nil
}
