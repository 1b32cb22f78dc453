package gateway_test

// The close handshake when the client starts it, and remote disconnect by
// user, on the three front doors (the doors and helpers of
// closing_test.go).

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/gateway"
)

// A client's Close frame is answered with a Close frame carrying the same
// code, so the client sees a clean close with its own code (1005 when it
// sent none), never 1006.
func TestClientCloseIsAnswered(t *testing.T) {
	for _, d := range doors {
		for _, tc := range []struct {
			name string
			send []byte // close frame payload
			want int
		}{
			{"normal", websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), websocket.CloseNormalClosure},
			{"going away", websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), websocket.CloseGoingAway},
			{"application code", websocket.FormatCloseMessage(4000, "done"), 4000},
			{"no code", nil, websocket.CloseNoStatusReceived},
		} {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				node, signer := newDoorNode(t, io.Discard)
				_, open := d.serve(t, node, signer)
				ws, _ := open(t)
				if err := ws.WriteControl(websocket.CloseMessage, tc.send, time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				if code, err := closeCode(ws); err != nil || code != tc.want {
					t.Fatalf("close code %d (%v), want %d", code, err, tc.want)
				}
			})
		}
	}
}

// gateway.Node.DisconnectUser closes the user's connections on every front
// door with that protocol's goodbye, and spares the connections it is told
// to keep.
func TestDisconnectUserClosesEveryDoor(t *testing.T) {
	node, signer := newDoorNode(t, io.Discard)
	type opened struct {
		door door
		ws   *websocket.Conn
	}
	var conns []opened
	for _, d := range doors {
		_, open := d.serve(t, node, signer)
		ws, _ := open(t)
		conns = append(conns, opened{d, ws})
	}
	// Another user's connection stays.
	if n, err := node.DisconnectUser(gateway.UserDisconnect{User: "someone-else"}); err != nil || n != 0 {
		t.Fatalf("another user: %d closed (%v)", n, err)
	}
	if _, err := node.DisconnectUser(gateway.UserDisconnect{}); err == nil {
		t.Fatal("a disconnect without a user was accepted")
	}
	if _, err := node.DisconnectUser(gateway.UserDisconnect{User: member, Code: 1000}); err == nil {
		t.Fatal("close code 1000 was accepted for a custom disconnect")
	}
	n, err := node.DisconnectUser(gateway.UserDisconnect{User: member})
	if err != nil || n != len(doors) {
		t.Fatalf("DisconnectUser closed %d (%v), want %d", n, err, len(doors))
	}
	for _, c := range conns {
		t.Run(c.door.name, func(t *testing.T) {
			var frames []map[string]any
			_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			var code int
			for {
				var m map[string]any
				err := c.ws.ReadJSON(&m)
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code = ce.Code
					break
				}
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				frames = append(frames, m)
			}
			switch c.door.proto {
			case gateway.ProtoPusher:
				if code != 4009 || !hasFrame(frames, func(m map[string]any) bool { return m["event"] == "pusher:error" }) {
					t.Fatalf("pusher: close %d after %v, want pusher:error and 4009", code, frames)
				}
			case gateway.ProtoCentrifuge:
				if code != 3503 {
					t.Fatalf("centrifuge: close %d, want 3503 force disconnect", code)
				}
			case gateway.ProtoActionCable:
				if !hasFrame(frames, func(m map[string]any) bool {
					return m["type"] == "disconnect" && m["reason"] == "remote" && m["reconnect"] == false
				}) {
					t.Fatalf("actioncable: frames %v, want disconnect remote without reconnect", frames)
				}
			}
		})
	}
}

// A custom Centrifugo code that asks clients to come back reaches the
// other protocols as "reconnect"; the kept connection stays open.
func TestDisconnectUserReconnectAndKeep(t *testing.T) {
	node, signer := newDoorNode(t, io.Discard)
	var cable, cf *websocket.Conn
	var cfID string
	for _, d := range doors {
		_, open := d.serve(t, node, signer)
		switch d.proto {
		case gateway.ProtoActionCable:
			cable, _ = open(t)
		case gateway.ProtoCentrifuge:
			cf, cfID = open(t)
		}
	}
	if _, err := node.DisconnectUser(gateway.UserDisconnect{User: member, Keep: []string{cfID}, Code: 4001, Reason: "moved", Reconnect: true}); err != nil {
		t.Fatal(err)
	}
	_ = cable.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := cable.ReadJSON(&m); err != nil {
			t.Fatalf("no disconnect frame: %v", err)
		}
		if m["type"] == "disconnect" {
			if m["reason"] != "remote" || m["reconnect"] != true {
				t.Fatalf("disconnect frame %v, want remote with reconnect", m)
			}
			break
		}
	}
	// The kept Centrifugo client still answers.
	writeJSON(t, cf, map[string]any{"id": 9, "ping": map[string]any{}})
	_ = cf.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := cf.ReadJSON(&m); err != nil {
			t.Fatalf("kept connection: %v", err)
		}
		if m["id"] == 9.0 {
			break
		}
	}
}

func hasFrame(frames []map[string]any, pred func(map[string]any) bool) bool {
	for _, f := range frames {
		if pred(f) {
			return true
		}
	}
	return false
}
