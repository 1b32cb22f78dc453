package gateway

import (
	"iter"
	"unique"
)

// Named holds one connection's subscriptions (or any per-connection values)
// by name. A connection has a handful, and a slice of them costs a
// fraction of a map's smallest table (≈ 250 bytes of every idle
// connection, see BENCHMARKS.md, "Session 10"); a lookup scans at most the
// per-connection subscription limit. The zero value is empty; it is not
// safe for concurrent use (the adapters hold their connection's mutex).
type Named[V any] struct {
	items []namedItem[V]
}

type namedItem[V any] struct {
	name string
	v    V
}

func (n *Named[V]) index(name string) int {
	for i := range n.items {
		if n.items[i].name == name {
			return i
		}
	}
	return -1
}

// Get returns the value under name.
func (n *Named[V]) Get(name string) (v V, ok bool) {
	if i := n.index(name); i >= 0 {
		return n.items[i].v, true
	}
	return v, false
}

// Set puts v under name, replacing what was there.
func (n *Named[V]) Set(name string, v V) {
	if i := n.index(name); i >= 0 {
		n.items[i].v = v
		return
	}
	n.items = append(n.items, namedItem[V]{name, v})
}

// Delete removes name and returns what it held.
func (n *Named[V]) Delete(name string) (v V, ok bool) {
	i := n.index(name)
	if i < 0 {
		return v, false
	}
	v = n.items[i].v
	last := len(n.items) - 1
	n.items[i] = n.items[last]
	n.items[last] = namedItem[V]{}
	n.items = n.items[:last]
	if last == 0 {
		n.items = nil // nothing kept by a connection that had subscriptions
	}
	return v, true
}

// Len is the number of names held.
func (n *Named[V]) Len() int { return len(n.items) }

// All yields every name and value, in no particular order. The body must
// not change n; collect first (Names, Values) to change it.
func (n *Named[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, it := range n.items {
			if !yield(it.name, it.v) {
				return
			}
		}
	}
}

// Names returns a copy of the names held.
func (n *Named[V]) Names() []string {
	out := make([]string, len(n.items))
	for i, it := range n.items {
		out[i] = it.name
	}
	return out
}

// Values returns a copy of the values held.
func (n *Named[V]) Values() []V {
	out := make([]V, len(n.items))
	for i, it := range n.items {
		out[i] = it.v
	}
	return out
}

// Take empties n and returns the values it held.
func (n *Named[V]) Take() []V {
	out := n.Values()
	n.items = nil
	return out
}

// Intern returns the one shared copy of s: every subscriber of a channel
// then holds the same channel name instead of the copy its subscribe
// command was decoded into.
func Intern(s string) string { return unique.Make(s).Value() }
