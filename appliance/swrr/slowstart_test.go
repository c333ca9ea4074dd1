package swrr

import (
	"strings"
	"testing"
	"time"
)

// slow is weights with a slow start on the peers in slowed.
func slow(d time.Duration, slowed Set, ws ...int) []Peer {
	ps := weights(ws...)
	for i := range ps {
		if slowed.Has(i) {
			ps[i].SlowStart = d
		}
	}
	return ps
}

// pickedBetween picks once every step from start until end and counts the
// picks of peer i, and all picks.
func pickedBetween(b *Balancer, i int, start, end time.Time, step time.Duration) (n, all int) {
	for now := start; now.Before(end); now = now.Add(step) {
		var tried Set
		j := b.Pick(&tried, now)
		b.Done(j, false, now)
		if j == i {
			n++
		}
		all++
	}
	return n, all
}

func TestSlowStartRampsAJoiningPeerUpToItsWeight(t *testing.T) {
	b := New(slow(10*time.Second, of(1), 10, 10))
	step := 10 * time.Millisecond
	// Over the first second it competes with weight at most 1 against 10.
	if n, all := pickedBetween(b, 1, t0, t0.Add(time.Second), step); n*11 > all+1 {
		t.Errorf("first second of slow start: %d of %d picks, want at most 1 in 11", n, all)
	}
	// Halfway it has about half its weight: 5 against 10.
	if n, all := pickedBetween(b, 1, t0.Add(5*time.Second), t0.Add(6*time.Second), step); n*3 > all+3 {
		t.Errorf("halfway: %d of %d picks, want about a third", n, all)
	}
	// After slow_start it has its weight.
	if n, all := pickedBetween(b, 1, t0.Add(10*time.Second), t0.Add(12*time.Second), step); n*2 != all {
		t.Errorf("after slow start: %d of %d picks, want half", n, all)
	}
}

func TestSlowStartJoinsAtTheFirstPickNotAtNew(t *testing.T) {
	b := New(slow(10*time.Second, of(1), 10, 10))
	later := t0.Add(time.Hour)
	if n, all := pickedBetween(b, 1, later, later.Add(time.Second), 10*time.Millisecond); n*11 > all+1 {
		t.Errorf("first second after its first pick: %d of %d picks, want at most 1 in 11", n, all)
	}
}

func TestRecoveryFromMaxFailsRampsAgain(t *testing.T) {
	b := New(slow(10*time.Second, of(1), 10, 10))
	pickedBetween(b, 1, t0, t0.Add(11*time.Second), 100*time.Millisecond)
	failed := t0.Add(11 * time.Second)
	b.Done(1, true, failed)
	// After fail_timeout it is picked again and its success brings it back.
	back := failed.Add(11 * time.Second)
	var tried Set
	for !tried.Has(1) {
		if b.Pick(&tried, back) < 0 {
			t.Fatal("peer 1 never picked after fail_timeout")
		}
	}
	b.Done(1, false, back)
	if n, all := pickedBetween(b, 1, back, back.Add(time.Second), 10*time.Millisecond); n*11 > all+1 {
		t.Errorf("first second after recovery: %d of %d picks, want at most 1 in 11", n, all)
	}
	if n, all := pickedBetween(b, 1, back.Add(10*time.Second), back.Add(12*time.Second), 10*time.Millisecond); n*2 != all {
		t.Errorf("after slow start: %d of %d picks, want half", n, all)
	}
}

func TestJoinStartsTheRampAgain(t *testing.T) {
	b := New(slow(10*time.Second, of(1), 10, 10))
	pickedBetween(b, 1, t0, t0.Add(11*time.Second), 100*time.Millisecond)
	joined := t0.Add(20 * time.Second)
	b.Join(1, joined)
	if n, all := pickedBetween(b, 1, joined, joined.Add(time.Second), 10*time.Millisecond); n*11 > all+1 {
		t.Errorf("first second after Join: %d of %d picks, want at most 1 in 11", n, all)
	}
}

func TestWithoutSlowStartJoinsChangeNothing(t *testing.T) {
	// nginx's sequences, with the clock moving and every peer joining anew
	// before each pick.
	tests := []struct {
		weights []int
		want    string
	}{
		{[]int{5, 1, 1}, "a a b a c a a"},
		{[]int{10, 5}, "a b a a b a"},
		{[]int{3, 2}, "a b a b a a b a b a"},
	}
	for _, tt := range tests {
		b := New(weights(tt.weights...))
		var got []string
		for k := range len(tt.want)/2 + 1 {
			now := t0.Add(time.Duration(k) * time.Second)
			for i := range tt.weights {
				b.Join(i, now)
			}
			var tried Set
			i := b.Pick(&tried, now)
			b.Done(i, false, now)
			got = append(got, string(rune('a'+i)))
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("weights %v: got %q, want %q", tt.weights, s, tt.want)
		}
	}
}

func TestCarryKeepsTheJoinTime(t *testing.T) {
	old := New(slow(10*time.Second, of(1), 10, 10))
	pickedBetween(old, 1, t0, t0.Add(5*time.Second), 100*time.Millisecond)
	// Reloaded halfway through the ramp: it goes on from there, not from 0.
	b := New(slow(10*time.Second, of(1), 10, 10))
	b.Carry(old, []int{0, 1})
	if got := b.peers[1].ramp(t0.Add(5 * time.Second).UnixNano()); got != 5 {
		t.Errorf("ramped weight after the reload: %d, want 5", got)
	}
	// A slow start added by a reload does not ramp a peer that was serving.
	without := New(weights(10, 10))
	pickedBetween(without, 1, t0, t0.Add(time.Second), 100*time.Millisecond)
	added := New(slow(10*time.Second, of(1), 10, 10))
	added.Carry(without, []int{0, 1})
	if got := added.peers[1].ramp(t0.Add(time.Second).UnixNano()); got != 10 {
		t.Errorf("a serving peer given a slow start by a reload ramped: weight %d, want 10", got)
	}
}

func TestSplitShareRampsWithTheGroupsSlowStart(t *testing.T) {
	b := New(slow(10*time.Second, of(2), 2, 1, 1))
	group := of(2)
	step := 10 * time.Millisecond
	if got := b.Share(&group, 5000, t0); got != 0 {
		t.Errorf("share before the group's first pick: %d, want 0", got)
	}
	first := splitSequence(b, group, 5000, 100, t0, step)
	if n := count(first, group); n > 5 {
		t.Errorf("first second of a 10s slow start at 50%%: %d of 100 picks, want at most 5", n)
	}
	if got := b.Share(&group, 5000, t0.Add(5*time.Second)); got != 2500 {
		t.Errorf("share halfway through slow start: %d, want 2500", got)
	}
	if got := b.Share(&group, 5000, t0.Add(10*time.Second)); got != 5000 {
		t.Errorf("share after slow start: %d, want 5000", got)
	}
	after := splitSequence(b, group, 5000, 100, t0.Add(10*time.Second), step)
	if n := count(after, group); n != 50 {
		t.Errorf("after slow start at 50%%: %d of 100 picks, want 50", n)
	}
}

func TestSplitShareIsTheWeightedMeanOfTheGroupsRamps(t *testing.T) {
	// Peer 1 (weight 3) is done ramping, peer 2 (weight 1) just joined.
	b := New(slow(10*time.Second, of(1, 2), 1, 3, 1))
	group := of(1, 2)
	b.Join(1, t0.Add(-time.Hour))
	b.Join(2, t0)
	if got := b.Share(&group, 1000, t0); got != 750 {
		t.Errorf("share %d, want 750 (3/4 of 1000)", got)
	}
	b.Done(2, true, t0) // down: only the ramped peer counts
	if got := b.Share(&group, 1000, t0); got != 1000 {
		t.Errorf("share with the joining peer down: %d, want 1000", got)
	}
}

func TestPickWithSlowStartDoesNotAllocate(t *testing.T) {
	b := New(slow(10*time.Second, of(0, 2), 10, 5, 3))
	allocs := testing.AllocsPerRun(1000, func() {
		var tried Set
		i := b.Pick(&tried, t0)
		b.Done(i, false, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pick", allocs)
	}
}
