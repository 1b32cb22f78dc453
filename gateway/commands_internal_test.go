package gateway

import (
	"encoding/json"
	"sync"
	"testing"
)

// fakeDisconnector records what it was asked to close.
type fakeDisconnector struct {
	mu   sync.Mutex
	seen []UserDisconnect
}

func (f *fakeDisconnector) DisconnectUser(d UserDisconnect) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, d)
	return 1
}

func (f *fakeDisconnector) got() []UserDisconnect {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]UserDisconnect(nil), f.seen...)
}

// Commands and user disconnects run on the calling node at once and on
// every other node of the cluster through the peers bus.
func TestCommandsReachEveryNode(t *testing.T) {
	bus := &memBus{}
	a, _ := clusterNode(t, bus, "a")
	b, _ := clusterNode(t, bus, "b")
	fa, fb := &fakeDisconnector{}, &fakeDisconnector{}
	a.AddDisconnector(fa)
	b.AddDisconnector(fb)
	var mu sync.Mutex
	got := map[string][]string{}
	for name, n := range map[string]*Node{"a": a, "b": b} {
		n.OnCommand("test.echo", func(body json.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], string(body))
		})
	}

	req := UserDisconnect{User: "42", Keep: []string{"c1"}, Code: 4000, Reason: "bye"}
	n, err := a.DisconnectUser(req)
	if err != nil || n != 1 {
		t.Fatalf("DisconnectUser: %d, %v", n, err)
	}
	if s := fa.got(); len(s) != 1 || s[0].User != "42" || s[0].Code != 4000 {
		t.Fatalf("the calling node did not close at once: %v", s)
	}
	eventually(t, "the other node closes the user's connections", func() bool {
		s := fb.got()
		return len(s) == 1 && s[0].User == "42" && s[0].Reason == "bye" && s[0].Spares("c1") && !s[0].Spares("c2")
	})

	a.Command("test.echo", json.RawMessage(`{"x":1}`))
	mu.Lock()
	local := len(got["a"])
	mu.Unlock()
	if local != 1 {
		t.Fatalf("the calling node ran the command %d times before Command returned", local)
	}
	eventually(t, "the other node runs the command", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["b"]) == 1 && got["b"][0] == `{"x":1}`
	})
	if s := fa.got(); len(s) != 1 {
		t.Fatalf("the calling node ran its own disconnect again from the bus: %v", s)
	}
}

func TestUserDisconnectValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    UserDisconnect
		ok   bool
	}{
		{"user only", UserDisconnect{User: "42"}, true},
		{"custom code", UserDisconnect{User: "42", Code: 4999, Reason: "x"}, true},
		{"no user", UserDisconnect{}, false},
		{"transport code", UserDisconnect{User: "42", Code: 1000}, false},
		{"code too high", UserDisconnect{User: "42", Code: 5000}, false},
		{"reason too long", UserDisconnect{User: "42", Code: 4000, Reason: string(make([]byte, 124))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.d.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestUserDisconnectSpares(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      UserDisconnect
		conn   string
		spared bool
	}{
		{"every connection", UserDisconnect{User: "42"}, "c1", false},
		{"one client: that one", UserDisconnect{User: "42", Client: "c1"}, "c1", false},
		{"one client: another", UserDisconnect{User: "42", Client: "c1"}, "c2", true},
		{"kept", UserDisconnect{User: "42", Keep: []string{"c2", "c1"}}, "c1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Spares(tc.conn); got != tc.spared {
				t.Fatalf("Spares(%s) = %v, want %v", tc.conn, got, tc.spared)
			}
		})
	}
}
