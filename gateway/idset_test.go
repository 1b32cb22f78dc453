package gateway

import (
	"fmt"
	"slices"
	"testing"
)

// TestIDSet checks the set against a map through the move from slice to
// map and back down to empty.
func TestIDSet(t *testing.T) {
	for _, n := range []int{1, 2, idSetSmall, idSetSmall + 1, 3 * idSetSmall} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var s idSet
			want := map[string]bool{}
			for i := range n {
				id := fmt.Sprint("c", i)
				if !s.add(id) {
					t.Fatalf("add(%s) = false for a new id", id)
				}
				if s.add(id) {
					t.Fatalf("add(%s) = true twice", id)
				}
				want[id] = true
			}
			check := func() {
				t.Helper()
				if s.len() != len(want) {
					t.Fatalf("len = %d, want %d", s.len(), len(want))
				}
				var got []string
				s.each(func(id string) { got = append(got, id) })
				if len(got) != len(want) {
					t.Fatalf("each gave %d ids, want %d", len(got), len(want))
				}
				for _, id := range got {
					if !want[id] || !s.has(id) {
						t.Fatalf("each gave %s, not in the set", id)
					}
				}
			}
			check()
			if s.remove("absent") || s.has("absent") {
				t.Fatal("an absent id was found")
			}
			ids := make([]string, 0, n)
			for id := range want {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				if !s.remove(id) {
					t.Fatalf("remove(%s) = false", id)
				}
				if s.remove(id) {
					t.Fatalf("remove(%s) = true twice", id)
				}
				delete(want, id)
				check()
			}
		})
	}
}
