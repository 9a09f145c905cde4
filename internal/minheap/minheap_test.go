package minheap

import (
	"math/rand"
	"slices"
	"testing"
)

func TestHeapSortsAndFixes(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		r := rand.New(rand.NewSource(int64(n)))
		h := New(func(a, b *int) bool { return *a < *b })
		var want []int
		for i := 0; i < n; i++ {
			v := r.Intn(50)
			want = append(want, v)
			h.Push(&v)
		}
		// Grow the top's key, as the merge loops do, and fix it.
		if n > 0 {
			top := h.Top()
			for i, w := range want {
				if w == *top {
					want[i] += 25
					break
				}
			}
			*top += 25
			h.FixTop()
		}
		slices.Sort(want)
		var got []int
		for h.Len() > 0 {
			got = append(got, *h.Top())
			h.Pop()
		}
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d: popped %v, want %v", n, got, want)
		}
	}
}
