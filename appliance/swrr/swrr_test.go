package swrr

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func weights(ws ...int) []Peer {
	ps := make([]Peer, len(ws))
	for i, w := range ws {
		ps[i] = Peer{Weight: w, MaxFails: 1, FailTimeout: 10 * time.Second}
	}
	return ps
}

// sequence picks n times with fresh tried sets and names peers a, b, c...
func sequence(b *Balancer, n int, now time.Time) string {
	return maskedSequence(b, Set{}, n, now)
}

// maskedSequence is sequence with the peers in mask never picked, as a
// rollback keeps the canary out.
func maskedSequence(b *Balancer, mask Set, n int, now time.Time) string {
	var out []string
	for range n {
		tried := mask
		i := b.Pick(&tried, now)
		if i < 0 {
			out = append(out, "-")
			continue
		}
		out = append(out, string(rune('a'+i)))
		b.Done(i, false, now)
	}
	return strings.Join(out, " ")
}

func TestPickSequenceMatchesNginx(t *testing.T) {
	tests := []struct {
		weights []int
		n       int
		want    string
	}{
		// The worked example in nginx's ngx_http_upstream_round_robin.c.
		{[]int{5, 1, 1}, 7, "a a b a c a a"},
		// The seed demo: v1 weight 10, v2 weight 5.
		{[]int{10, 5}, 6, "a b a a b a"},
		{[]int{1, 1, 1}, 6, "a b c a b c"},
		{[]int{3, 2}, 10, "a b a b a a b a b a"},
		{[]int{4, 0, 2}, 6, "a c a a c a"},
		{[]int{7}, 3, "a a a"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			got := sequence(New(weights(tt.weights...)), tt.n, t0)
			if got != tt.want {
				t.Errorf("weights %v: got %q, want %q", tt.weights, got, tt.want)
			}
		})
	}
}

func TestPickSharesAreExactOverOneCycle(t *testing.T) {
	ws := []int{10, 5, 3, 1}
	b := New(weights(ws...))
	counts := make([]int, len(ws))
	for range 19 * 20 {
		var tried Set
		counts[b.Pick(&tried, t0)]++
	}
	for i, w := range ws {
		if counts[i] != w*20 {
			t.Errorf("peer %d: %d picks, want %d", i, counts[i], w*20)
		}
	}
}

func TestTriedPeerIsNeverPickedAgain(t *testing.T) {
	b := New(weights(5, 1, 1))
	var tried Set
	seen := map[int]bool{}
	for range 3 {
		i := b.Pick(&tried, t0)
		if i < 0 || seen[i] {
			t.Fatalf("pick %d after %v", i, seen)
		}
		seen[i] = true
	}
	if i := b.Pick(&tried, t0); i != -1 {
		t.Fatalf("all tried: got %d, want -1", i)
	}
}

func TestWeightZeroIsNeverPicked(t *testing.T) {
	b := New(weights(0, 3))
	for range 10 {
		var tried Set
		if i := b.Pick(&tried, t0); i != 1 {
			t.Fatalf("picked %d", i)
		}
	}
	if i := New(weights(0)).Pick(new(Set), t0); i != -1 {
		t.Fatalf("single peer with weight 0: picked %d", i)
	}
}

func TestFailedPeerIsSkippedUntilFailTimeout(t *testing.T) {
	b := New(weights(1, 1))
	b.Done(0, true, t0)
	for range 4 {
		var tried Set
		if i := b.Pick(&tried, t0.Add(5*time.Second)); i != 1 {
			t.Fatalf("within fail_timeout: picked %d, want 1", i)
		}
	}
	if !b.Down(0, t0.Add(10*time.Second)) {
		t.Error("peer 0 should still be down at exactly fail_timeout")
	}
	if b.Down(0, t0.Add(10*time.Second+1)) {
		t.Error("peer 0 should be back after fail_timeout")
	}
	got := sequence(b, 4, t0.Add(11*time.Second))
	if !strings.Contains(got, "a") {
		t.Errorf("after fail_timeout peer a never picked: %q", got)
	}
}

func TestMaxFailsCountsFailuresWithinTimeout(t *testing.T) {
	ps := weights(1, 1)
	ps[0].MaxFails = 3
	b := New(ps)
	b.Done(0, true, t0)
	b.Done(0, true, t0)
	if b.Down(0, t0) {
		t.Fatal("down after 2 of 3 failures")
	}
	b.Done(0, true, t0)
	if !b.Down(0, t0) {
		t.Fatal("not down after 3 of 3 failures")
	}
}

func TestMaxFailsZeroNeverTakesPeerOut(t *testing.T) {
	ps := weights(1, 1)
	ps[0].MaxFails = 0
	b := New(ps)
	for range 5 {
		b.Done(0, true, t0)
	}
	if b.Down(0, t0) {
		t.Fatal("max_fails=0 peer taken out")
	}
}

func TestSuccessAfterRecoveryClearsFails(t *testing.T) {
	ps := weights(1, 1)
	ps[0].MaxFails = 2
	b := New(ps)
	b.Done(0, true, t0)
	// The pick after fail_timeout moves "checked" past "accessed"; a success
	// then clears the failure count, as nginx's free_round_robin_peer does.
	later := t0.Add(11 * time.Second)
	var tried Set
	for tried.Has(0) == false {
		i := b.Pick(&tried, later)
		if i < 0 {
			t.Fatal("peer 0 never picked")
		}
	}
	b.Done(0, false, later)
	b.Done(0, true, later)
	if b.Down(0, later) {
		t.Fatal("one failure after a cleared count should not reach max_fails=2")
	}
}

func TestSuccessOfAPeerWithoutFailuresTakesNoLock(t *testing.T) {
	b := New(weights(1, 1))
	b.Done(1, true, t0)
	b.mu.Lock()
	defer b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Done(0, false, t0)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done of a success on a peer without failures waited for the lock")
	}
	if b.peers[1].fails != 1 {
		t.Fatal("the other peer's failure was lost")
	}
}

func TestEffectiveWeightDropsOnFailureAndRecoversGradually(t *testing.T) {
	b := New(weights(10, 10))
	b.Done(0, true, t0)
	if got := b.peers[0].effective; got != 0 {
		t.Fatalf("effective weight after failure with max_fails=1: %d, want 0", got)
	}
	now := t0.Add(11 * time.Second)
	for want := 1; want <= 10; want++ {
		var tried Set
		b.Done(b.Pick(&tried, now), false, now)
		if got := b.peers[0].effective; got != want {
			t.Fatalf("after %d picks effective=%d, want %d", want, got, want)
		}
	}
	var tried Set
	b.Pick(&tried, now)
	if got := b.peers[0].effective; got != 10 {
		t.Fatalf("effective weight grew past weight: %d", got)
	}
}

func TestAllPeersFailedResetsFailuresForQuickRecovery(t *testing.T) {
	b := New(weights(1, 1))
	b.Done(0, true, t0)
	b.Done(1, true, t0)
	var tried Set
	if i := b.Pick(&tried, t0); i != -1 {
		t.Fatalf("all failed: picked %d", i)
	}
	tried = Set{}
	if i := b.Pick(&tried, t0); i < 0 {
		t.Fatal("after the reset a peer should be live again")
	}
}

func TestSinglePeerIgnoresMaxFails(t *testing.T) {
	b := New(weights(1))
	b.Done(0, true, t0)
	if i := b.Pick(new(Set), t0); i != 0 {
		t.Fatalf("single failed peer: picked %d, want 0 (as nginx)", i)
	}
}

func TestMaskedPeersAreSkippedWithoutDisturbingTheOthers(t *testing.T) {
	// A mask is how a rollback removes the canary: the stable peers keep
	// their own smooth sequence.
	b := New(weights(2, 1, 1))
	var mask Set
	mask.Add(2)
	if s := maskedSequence(b, mask, 6, t0); s != "a b a a b a" {
		t.Fatalf("masked sequence %q", s)
	}
	if s := sequence(b, 4, t0); !strings.Contains(s, "c") {
		t.Fatalf("peer c never came back: %q", s)
	}
	one := New(weights(3))
	if i := one.Pick(new(Set), t0); i != 0 {
		t.Fatalf("single peer, unmasked: picked %d, want 0", i)
	}
	masked := mask0()
	if i := one.Pick(&masked, t0); i != -1 {
		t.Fatalf("excluded single peer picked: %d", i)
	}
}

func TestPickAndDoneDoNotAllocate(t *testing.T) {
	b := New(weights(10, 5, 3))
	allocs := testing.AllocsPerRun(1000, func() {
		var tried Set
		i := b.Pick(&tried, t0)
		b.Done(i, false, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pick", allocs)
	}
}

func TestConcurrentPicksKeepExactShares(t *testing.T) {
	b := New(weights(10, 5))
	var mu sync.Mutex
	counts := [2]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := [2]int{}
			for range 1500 {
				var tried Set
				i := b.Pick(&tried, t0)
				local[i]++
				b.Done(i, false, t0)
			}
			mu.Lock()
			counts[0] += local[0]
			counts[1] += local[1]
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts != [2]int{8000, 4000} {
		t.Fatalf("shares %v, want [8000 4000]", counts)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 8, 64} {
		ws := make([]int, n)
		for i := range ws {
			ws[i] = 1 + i%7
		}
		bal := New(weights(ws...))
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var tried Set
				i := bal.Pick(&tried, t0)
				bal.Done(i, false, t0)
			}
		})
		b.Run(fmt.Sprintf("peers=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var tried Set
					i := bal.Pick(&tried, t0)
					bal.Done(i, false, t0)
				}
			})
		})
	}
}

func mask0() Set {
	var s Set
	s.Add(0)
	return s
}

func TestCarryContinuesTheSequenceAcrossAReload(t *testing.T) {
	// Reloading after every pick: nginx would restart at "a" each time.
	b := New(weights(1, 1))
	var got []string
	for range 6 {
		var tried Set
		got = append(got, string(rune('a'+b.Pick(&tried, t0))))
		next := New(weights(1, 1))
		next.Carry(b, []int{0, 1})
		b = next
	}
	if s := strings.Join(got, " "); s != "a b a b a b" {
		t.Fatalf("sequence across reloads %q, want a b a b a b", s)
	}
}

func TestCarryKeepsFailuresAndMapsByIndex(t *testing.T) {
	old := New(weights(4, 4))
	old.Done(1, true, t0) // peer 1 failed
	// The new table has a new peer first; old peer 1 is now peer 2.
	b := New(weights(1, 4, 4))
	b.Carry(old, []int{-1, 0, 1})
	if !b.Down(2, t0) {
		t.Error("a failed peer was forgiven by the reload")
	}
	if b.Down(1, t0) || b.Down(0, t0) {
		t.Error("healthy peers marked down")
	}
	if b.peers[2].effective != 0 {
		t.Errorf("recovering effective weight not kept: %d", b.peers[2].effective)
	}
}

func TestTryPickLeavesFailuresAlone(t *testing.T) {
	b := New(weights(1, 1))
	b.Done(0, true, t0)
	var tried Set
	tried.Add(1)
	if i := b.TryPick(&tried, t0); i != -1 {
		t.Fatalf("picked %d", i)
	}
	if !b.Down(0, t0) {
		t.Fatal("TryPick cleared the failure a plain Pick would")
	}
}
