package swrr

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// of is the set of the peers listed.
func of(peers ...int) Set {
	var s Set
	for _, i := range peers {
		s.Add(i)
	}
	return s
}

// splitSequence picks n times by PickSplit, one pick every step from
// start, and names peers a, b, c...
func splitSequence(b *Balancer, group Set, share, n int, start time.Time, step time.Duration) []int {
	got := make([]int, n)
	for k := range n {
		now := start.Add(time.Duration(k) * step)
		var tried Set
		got[k] = b.PickSplit(&tried, &group, share, now)
		if got[k] >= 0 {
			b.Done(got[k], false, now)
		}
	}
	return got
}

// count is how many of picks went to the peers in s.
func count(picks []int, s Set) int {
	n := 0
	for _, i := range picks {
		if i >= 0 && s.Has(i) {
			n++
		}
	}
	return n
}

func TestSplitOfTenPercentIsEveryTenthPick(t *testing.T) {
	b := New(weights(2, 1, 1))
	group := of(2)
	picks := splitSequence(b, group, 1000, 1000, t0, 0)
	for k := 0; k < len(picks); k += 100 {
		if n := count(picks[k:k+100], group); n != 10 {
			t.Errorf("picks %d to %d: %d to the group, want 10", k, k+99, n)
		}
	}
	last := -100
	for k, i := range picks {
		if !group.Has(i) {
			continue
		}
		if k-last != 10 && last >= 0 {
			t.Fatalf("group picks %d and %d are %d apart, want 10", last, k, k-last)
		}
		last = k
	}
}

func TestSplitSharesAreExactOverOneCycle(t *testing.T) {
	for _, share := range []int{100, 1000, 2500, 3333, 5000, 9900, Whole} {
		t.Run(fmt.Sprintf("%d/%d", share, Whole), func(t *testing.T) {
			b := New(weights(2, 1, 1))
			group := of(2)
			if n := count(splitSequence(b, group, share, Whole, t0, 0), group); n != share {
				t.Errorf("%d of %d picks to the group, want %d", n, Whole, share)
			}
		})
	}
}

func TestSplitKeepsTheWeightsInsideEachSide(t *testing.T) {
	// Stable 2:1 inside the 90%, canary 3:1 inside the 10%.
	b := New(weights(2, 1, 3, 1))
	picks := splitSequence(b, of(2, 3), 1000, 600, t0, 0)
	counts := make([]int, 4)
	for _, i := range picks {
		counts[i]++
	}
	if want := []int{360, 180, 45, 15}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("picks per peer %v, want %v", counts, want)
	}
	// Inside a side the sequence is nginx's for that side's weights.
	var rest []string
	for _, i := range picks[:12] {
		if i < 2 {
			rest = append(rest, string(rune('a'+i)))
		}
	}
	if s := strings.Join(rest, " "); !strings.HasPrefix(s, "a b a a b a") {
		t.Errorf("stable side's sequence %q, want nginx's a b a a b a", s)
	}
}

func TestSplitSendsEverythingToTheOtherSideWhenOneHasNoLivePeer(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(b *Balancer, tried *Set)
		share  int
		wantTo Set
	}{
		{"group tried", func(b *Balancer, tried *Set) { tried.Add(2) }, 5000, of(0, 1)},
		{"group down by max_fails", func(b *Balancer, _ *Set) { b.Done(2, true, t0) }, 5000, of(0, 1)},
		{"rest down by max_fails", func(b *Balancer, _ *Set) { b.Done(0, true, t0); b.Done(1, true, t0) }, 1000, of(2)},
		{"rest tried", func(b *Balancer, tried *Set) { tried.Add(0); tried.Add(1) }, 100, of(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(weights(2, 1, 1))
			group := of(2)
			for range 20 {
				var tried Set
				tt.setup(b, &tried)
				if i := b.PickSplit(&tried, &group, tt.share, t0); !tt.wantTo.Has(i) {
					t.Fatalf("picked %d", i)
				}
			}
		})
	}
	t.Run("weight 0 in the group", func(t *testing.T) {
		b := New(weights(2, 1, 0))
		group := of(2)
		if n := count(splitSequence(b, group, 5000, 20, t0, 0), group); n != 0 {
			t.Fatalf("%d picks to a group of weight 0", n)
		}
	})
	t.Run("neither side", func(t *testing.T) {
		b := New(weights(1, 1))
		b.Done(0, true, t0)
		b.Done(1, true, t0)
		group := of(1)
		if i := b.PickSplit(new(Set), &group, 5000, t0); i != -1 {
			t.Fatalf("all down: picked %d", i)
		}
		if b.Down(0, t0) || b.Down(1, t0) {
			t.Fatal("no pick left, but the failure counts were not reset as nginx does")
		}
	})
}

func TestSplitContinuesAcrossAReload(t *testing.T) {
	b := New(weights(1, 1))
	group := of(1)
	var picks []int
	for range 100 {
		var tried Set
		picks = append(picks, b.PickSplit(&tried, &group, 1000, t0))
		next := New(weights(1, 1))
		next.Carry(b, []int{0, 1})
		b = next
	}
	if n := count(picks, group); n != 10 {
		t.Fatalf("reloading after every pick: %d of 100 to the group, want 10", n)
	}
}

func TestPickSplitDoesNotAllocate(t *testing.T) {
	ps := weights(10, 5, 3)
	ps[2].SlowStart = 10 * time.Second
	b := New(ps)
	group := of(2)
	allocs := testing.AllocsPerRun(1000, func() {
		var tried Set
		i := b.PickSplit(&tried, &group, 1000, t0)
		b.Done(i, false, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pick", allocs)
	}
}
