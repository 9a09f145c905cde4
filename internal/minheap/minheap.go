// Package minheap is a binary min-heap over a slice, generic so that hot
// loops (merging capture files, scheduling simulated packets) avoid
// container/heap's interface boxing and indirect calls per element.
package minheap

// Heap keeps its smallest element (by Less) at index 0.
type Heap[T any] struct {
	items []T
	less  func(a, b T) bool
}

// New returns an empty heap ordered by less.
func New[T any](less func(a, b T) bool) *Heap[T] { return &Heap[T]{less: less} }

// Len is the number of elements.
func (h *Heap[T]) Len() int { return len(h.items) }

// Top is the smallest element; the heap must not be empty.
func (h *Heap[T]) Top() T { return h.items[0] }

// Items is the backing slice, in heap order, for iteration (do not modify).
func (h *Heap[T]) Items() []T { return h.items }

// Push adds x.
func (h *Heap[T]) Push(x T) {
	h.items = append(h.items, x)
	h.up(len(h.items) - 1)
}

// Pop removes the smallest element.
func (h *Heap[T]) Pop() {
	n := len(h.items) - 1
	h.items[0] = h.items[n]
	var zero T
	h.items[n] = zero // let the garbage collector have it
	h.items = h.items[:n]
	if n > 0 {
		h.down(0)
	}
}

// FixTop restores the order after the smallest element's key grew.
func (h *Heap[T]) FixTop() { h.down(0) }

// Reset empties the heap.
func (h *Heap[T]) Reset() { h.items = nil }

func (h *Heap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *Heap[T]) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			return
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
}
