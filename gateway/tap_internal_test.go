package gateway

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/domain"
)

// tapSub is a subscription of a connection speaking proto.
type tapSub struct {
	id    string
	proto Protocol
	got   atomic.Int64
}

func (s *tapSub) ConnID() string     { return s.id }
func (s *tapSub) Deliver(*Message)   { s.got.Add(1) }
func (s *tapSub) Protocol() Protocol { return s.proto }

var _ ProtocolSubscriber = (*tapSub)(nil)

// tapConn is a registered connection that describes itself.
type tapConn struct {
	w    *Writer
	user string
}

func (c *tapConn) Describe() ConnDesc {
	return ConnDesc{Proto: ProtoActionCable, Writer: c.w, User: c.user, Remote: "192.0.2.1:5000"}
}

func tapEnv(i int, project string) domain.Envelope {
	return domain.Envelope{ID: fmt.Sprint("ev-", i), Name: "AttendeeCreated",
		Scope: domain.Scope{Project: project, Family: "attendees"}, Data: json.RawMessage(`{"n":1}`),
		TriggeredBy: &domain.TriggeredBy{OperationID: "v1.project.attendees.store", RequestID: fmt.Sprint("req-", i)}}
}

// everything does one of each thing the tap is told about.
func everything(t *testing.T, n *Node, subs []*tapSub) {
	t.Helper()
	extra := &tapSub{id: "late", proto: ProtoPusher}
	n.Hub.Subscribe("dashboard.project.demo.attendees", extra)
	n.DispatchBatch([]domain.Envelope{tapEnv(1, "demo")})
	n.DispatchBatch([]domain.Envelope{tapEnv(2, "demo"), tapEnv(3, "demo")}) // a backlog: Hub.PublishMany
	n.Broadcast(&Message{Channel: "dashboard.project.demo.attendees", Event: "client-typing", Data: json.RawMessage(`{}`),
		From: &ClientInfo{ConnID: "c1", UserID: "42"}, ExceptConn: subs[0].id})
	n.ReportAuthFailure(AuthFailure{Proto: ProtoCentrifuge, Door: DoorSubscribe, Conn: "c9", Reason: "permission denied"})
	r := NewRegistry[*tapConn]()
	w := NewWriter(WriterConfig{Write: func([][]byte) error { return nil }})
	r.Add("cable-1", &tapConn{w: w, user: "7"})
	<-w.CloseWith(CloseFrame(4001, "bye"))
	r.Remove("cable-1")
	n.Hub.Unsubscribe("dashboard.project.demo.attendees", extra)
}

func tapNode(t *testing.T) (*Node, []*tapSub) {
	t.Helper()
	n := NewNode(nil, nil)
	var subs []*tapSub
	for i, p := range []Protocol{ProtoPusher, ProtoPusher, ProtoCentrifuge, ProtoActionCable} {
		s := &tapSub{id: fmt.Sprint("s", i), proto: p}
		n.Hub.Subscribe("dashboard.project.demo.attendees", s)
		subs = append(subs, s)
	}
	return n, subs
}

// Nobody watching: the hooks build nothing (no line, no copy, no
// encoding), and every delivery happens.
func TestTapOffBuildsNothing(t *testing.T) {
	n, subs := tapNode(t)
	if n.Tap().Watching() {
		t.Fatal("a watcher is open before the test")
	}
	before := n.Tap().built.Load()
	everything(t, n, subs)
	if got := n.Tap().built.Load() - before; got != 0 {
		t.Fatalf("the tap built %d lines with nobody watching", got)
	}
	for _, s := range subs {
		if want := int64(4); s.id == subs[0].id && s.got.Load() != 3 || s.id != subs[0].id && s.got.Load() != want {
			t.Errorf("%s got %d deliveries", s.id, s.got.Load())
		}
	}
	// The line is the one allocation the tap adds, and only while someone
	// watches: a dispatch allocates less off than watched.
	env := []domain.Envelope{tapEnv(9, "demo")}
	off := testing.AllocsPerRun(200, func() { n.DispatchBatch(env) })
	w := n.Tap().Watch(1 << 16)
	on := testing.AllocsPerRun(200, func() { n.DispatchBatch(env) })
	w.Close()
	if on <= off {
		t.Fatalf("allocations per dispatch: %v off, %v watched: the watched path should build a line", off, on)
	}
	t.Logf("allocations per dispatch: %v with nobody watching, %v watched", off, on)
}

// Every kind of line, with what the console shows of it.
func TestTapLines(t *testing.T) {
	n, subs := tapNode(t)
	w := n.Tap().Watch(100)
	defer w.Close()
	everything(t, n, subs)
	var lines []*Line
	for len(w.Lines()) > 0 {
		lines = append(lines, <-w.Lines())
	}
	var kinds []string
	for _, l := range lines {
		kinds = append(kinds, l.Kind.String())
	}
	want := []string{"subscribe", "event", "event", "event", "client", "auth_failure", "connect", "disconnect", "unsubscribe"}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	for _, tc := range []struct {
		name string
		l    *Line
		ok   func(l *Line) bool
	}{
		{"subscribe: connection, protocol, count", lines[0], func(l *Line) bool {
			return l.Conn == "late" && l.Proto == ProtoPusher && l.Count == 5 && l.Channel == "dashboard.project.demo.attendees"
		}},
		{"event: name, channel, project, trigger, reach", lines[1], func(l *Line) bool {
			return l.Event == "AttendeeCreated" && l.ID == "ev-1" && l.Project == "demo" && l.TriggeredBy.RequestID == "req-1" &&
				l.Reached == 5 && string(l.Data) == `{"n":1}` && !l.Time.IsZero()
		}},
		{"event: fan-out per protocol", lines[1], func(l *Line) bool {
			f := l.Fanout()
			return f["pusher"] == 3 && f["centrifuge"] == 1 && f["actioncable"] == 1 && f["other"] == 0
		}},
		{"backlog event: every subscriber", lines[3], func(l *Line) bool {
			return l.ID == "ev-3" && l.TriggeredBy.RequestID == "req-3" && l.Reached == 5
		}},
		{"client event: publisher, exclusion", lines[4], func(l *Line) bool {
			return l.Event == "client-typing" && l.From.UserID == "42" && l.Reached == 4 && l.Fanout()["pusher"] == 2 && !l.Relayed
		}},
		{"auth failure: door and reason", lines[5], func(l *Line) bool {
			return l.Proto == ProtoCentrifuge && l.Door == DoorSubscribe && l.Conn == "c9" && l.Reason == "permission denied"
		}},
		{"connect: who and where", lines[6], func(l *Line) bool {
			return l.Conn == "cable-1" && l.Proto == ProtoActionCable && l.User == "7" && l.Remote == "192.0.2.1:5000"
		}},
		{"disconnect: close code and reason", lines[7], func(l *Line) bool {
			return l.Conn == "cable-1" && l.Code == 4001 && l.Reason == "bye" && !l.ByClient
		}},
		{"unsubscribe: count after", lines[8], func(l *Line) bool { return l.Conn == "late" && l.Count == 4 }},
	} {
		if !tc.ok(tc.l) {
			t.Errorf("%s: %+v", tc.name, *tc.l)
		}
	}
}

// A watcher that does not read loses lines once its buffer is full; the
// events still reach every subscriber, and the dispatch never waits.
func TestTapSlowWatcherDropsLinesNotEvents(t *testing.T) {
	n, subs := tapNode(t)
	slow := n.Tap().Watch(4)
	defer slow.Close()
	fast := n.Tap().Watch(1000)
	defer fast.Close()
	const events = 100
	start := time.Now()
	for i := range events {
		n.DispatchBatch([]domain.Envelope{tapEnv(i, "demo")})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dispatching took %s", d)
	}
	for _, s := range subs {
		if s.got.Load() != events {
			t.Errorf("%s got %d of %d events", s.id, s.got.Load(), events)
		}
	}
	if len(slow.Lines()) != 4 || slow.Dropped() != events-4 {
		t.Errorf("slow watcher: %d lines kept, %d dropped; want 4 and %d", len(slow.Lines()), slow.Dropped(), events-4)
	}
	if len(fast.Lines()) != events || fast.Dropped() != 0 {
		t.Errorf("fast watcher: %d lines, %d dropped", len(fast.Lines()), fast.Dropped())
	}
}

// Closing the last watcher turns the tap off; closing twice is harmless.
func TestTapWatchClose(t *testing.T) {
	var tap Tap
	a, b := tap.Watch(1), tap.Watch(1)
	a.Close()
	if !tap.Watching() {
		t.Fatal("off with a watcher open")
	}
	b.Close()
	b.Close()
	if tap.Watching() {
		t.Fatal("on with no watcher")
	}
	tap.emit(&Line{})
	if tap.built.Load() != 0 {
		t.Fatal("built a line with no watcher")
	}
}
