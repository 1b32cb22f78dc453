package gateway

import (
	"maps"
	"slices"
	"testing"
	"unsafe"
)

// TestNamed runs a sequence of operations on Named and on a map side by
// side; every step must leave them holding the same.
func TestNamed(t *testing.T) {
	type op struct {
		kind  string // set, delete
		name  string
		value int
	}
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"empty", nil},
		{"set and replace", []op{{"set", "a", 1}, {"set", "b", 2}, {"set", "a", 3}}},
		{"delete first, middle, last, absent", []op{
			{"set", "a", 1}, {"set", "b", 2}, {"set", "c", 3}, {"set", "d", 4},
			{"delete", "a", 0}, {"delete", "c", 0}, {"delete", "d", 0}, {"delete", "x", 0},
		}},
		{"delete all, set again", []op{{"set", "a", 1}, {"delete", "a", 0}, {"delete", "a", 0}, {"set", "a", 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n Named[int]
			want := map[string]int{}
			for _, o := range tc.ops {
				switch o.kind {
				case "set":
					n.Set(o.name, o.value)
					want[o.name] = o.value
				case "delete":
					v, ok := n.Delete(o.name)
					w, wok := want[o.name]
					if ok != wok || v != w {
						t.Fatalf("Delete(%s) = %d, %v; want %d, %v", o.name, v, ok, w, wok)
					}
					delete(want, o.name)
				}
				if n.Len() != len(want) {
					t.Fatalf("after %v: Len = %d, want %d", o, n.Len(), len(want))
				}
				got := maps.Collect(n.All())
				if !maps.Equal(got, want) {
					t.Fatalf("after %v: All = %v, want %v", o, got, want)
				}
				for name, w := range want {
					if v, ok := n.Get(name); !ok || v != w {
						t.Fatalf("Get(%s) = %d, %v; want %d", name, v, ok, w)
					}
				}
				if _, ok := n.Get("absent"); ok {
					t.Fatal("Get found an absent name")
				}
				names := n.Names()
				slices.Sort(names)
				if !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
					t.Fatalf("Names = %v", names)
				}
				values := n.Values()
				slices.Sort(values)
				if !slices.Equal(values, slices.Sorted(maps.Values(want))) {
					t.Fatalf("Values = %v", values)
				}
			}
			taken := n.Take()
			if len(taken) != len(want) || n.Len() != 0 {
				t.Fatalf("Take gave %d values and left %d", len(taken), n.Len())
			}
		})
	}
}

func TestIntern(t *testing.T) {
	a := Intern(string([]byte("dashboard.project.x.attendees")))
	b := Intern(string([]byte("dashboard.project.x.attendees")))
	if a != b || a != "dashboard.project.x.attendees" {
		t.Fatal("Intern changed the string")
	}
	if unsafeData(a) != unsafeData(b) {
		t.Fatal("two interned copies of one name do not share their bytes")
	}
}

func unsafeData(s string) *byte { return unsafe.StringData(s) }
