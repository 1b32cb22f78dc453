package gateway

import (
	"context"
	"slices"
	"testing"
	"time"
)

type regConn struct {
	id     string
	closed chan struct{}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry[*regConn]()
	a, b, c := &regConn{id: "a", closed: make(chan struct{})}, &regConn{id: "b", closed: make(chan struct{})}, &regConn{id: "c", closed: make(chan struct{})}
	for _, x := range []*regConn{a, b, c} {
		if !r.Add(x.id, x) {
			t.Fatalf("add %s refused before shutdown", x.id)
		}
	}
	r.SetUser("a", "u1")
	r.SetUser("b", "u1")
	r.SetUser("c", "u2")
	r.SetUser("c", "u1") // moves: one user per connection
	ids := func(cs []*regConn) []string {
		var out []string
		for _, x := range cs {
			out = append(out, x.id)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"u1", []string{"a", "b", "c"}},
		{"u2", nil},
		{"nobody", nil},
	} {
		if got := ids(r.ByUser(tc.user)); !slices.Equal(got, tc.want) {
			t.Fatalf("ByUser(%s) = %v, want %v", tc.user, got, tc.want)
		}
	}
	r.Remove("b")
	if got := ids(r.ByUser("u1")); !slices.Equal(got, []string{"a", "c"}) || r.Len() != 2 {
		t.Fatalf("after remove: ByUser %v, Len %d", got, r.Len())
	}
	if _, ok := r.Get("b"); ok {
		t.Fatal("removed connection still found")
	}
	done := make(chan struct{})
	r.Run("a", func(ended func()) {
		go func() { <-a.closed; ended(); close(done) }()
	})
	first := r.Shutdown(context.Background(), func(x *regConn) <-chan struct{} {
		close(x.closed)
		return x.closed
	})
	if !first || r.Shutdown(context.Background(), func(x *regConn) <-chan struct{} { return x.closed }) {
		t.Fatal("Shutdown reports first only once")
	}
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("run did not end")
	}
	if r.Add("d", &regConn{id: "d"}) {
		t.Fatal("add accepted during shutdown")
	}
}
