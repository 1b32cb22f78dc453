package gateway_test

// The connection lifecycle every door shares (gateway.Registry): each
// connection is counted and its connect and disconnect are logged at debug
// level with the same keys whatever the protocol, the disconnect with the
// close code and who closed; a refused credential is counted and logged.

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchboard/gateway"
	"switchboard/gateway/actioncable"
)

func TestConnectionLifecycleCountedAndLogged(t *testing.T) {
	for _, d := range doors {
		for _, end := range []struct {
			name string
			// close ends the connection from the client's side.
			close      func(ws *websocket.Conn)
			code       int
			reasonHint string // a substring of the logged reason
		}{
			{"close frame", func(ws *websocket.Conn) {
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second))
			}, 4000, ""},
			{"vanished", func(ws *websocket.Conn) { _ = ws.NetConn().Close() }, gateway.CloseAbnormal, "EOF"},
		} {
			t.Run(d.name+"/"+end.name, func(t *testing.T) {
				logs := &syncBuffer{}
				node, signer := newDoorNode(t, logs)
				_, open := d.serve(t, node, signer)
				stats := node.Stats()
				connects, disconnects := stats.Connects(d.proto), stats.Disconnects(d.proto)
				traffic := stats.Traffic(d.proto)

				ws, connID := open(t)
				if n := stats.Connects(d.proto) - connects; n != 1 {
					t.Fatalf("%d connects counted, want 1", n)
				}
				connect := waitLine(t, logs, "connect", connID)
				if connect["level"] != "DEBUG" || connect["proto"] != d.name || connect["remote"] == "" {
					t.Fatalf("connect line %v: want DEBUG, proto %s, a remote address", connect, d.name)
				}

				// One event: a delivery and its bytes, counted on the
				// connection and read through Stats while it is open.
				node.Publish(&gateway.Message{Channel: memberChan, Event: "Ping", Data: json.RawMessage(`{"n":1}`)})
				for {
					f := readJSON(t, ws)
					if f["type"] != "ping" { // ActionCable's heartbeat
						break
					}
				}
				now := stats.Traffic(d.proto)
				if now.Deliveries-traffic.Deliveries != 1 || now.Bytes <= traffic.Bytes {
					t.Fatalf("traffic %+v after %+v: want one more delivery and more bytes", now, traffic)
				}

				end.close(ws)
				line := waitLine(t, logs, "disconnect", connID)
				code, _ := line["code"].(float64)
				reason, _ := line["reason"].(string)
				if line["level"] != "DEBUG" || line["proto"] != d.name || int(code) != end.code ||
					line["by"] != "client" || line["user"] != member || !strings.Contains(reason, end.reasonHint) {
					t.Fatalf("disconnect line %v: want DEBUG, proto %s, code %d, by client, user %s, reason with %q",
						line, d.name, end.code, member, end.reasonHint)
				}
				deadline := time.Now().Add(5 * time.Second)
				for stats.Disconnects(d.proto)-disconnects != 1 {
					if time.Now().After(deadline) {
						t.Fatalf("%d disconnects counted, want 1", stats.Disconnects(d.proto)-disconnects)
					}
					time.Sleep(10 * time.Millisecond)
				}
				if after := stats.Traffic(d.proto); after.Deliveries < now.Deliveries || after.Bytes < now.Bytes {
					t.Fatalf("traffic went down at the disconnect: %+v after %+v", after, now)
				}
			})
		}
	}
}

// A credential refused on a WebSocket is counted for its protocol and door
// and logged at debug level with the connection's remote address.
func TestAuthFailureCountedAndLogged(t *testing.T) {
	for _, d := range doors {
		t.Run(d.name, func(t *testing.T) {
			logs := &syncBuffer{}
			node, signer := newDoorNode(t, logs)
			u, _ := d.serve(t, node, signer)
			door := gateway.DoorConnect
			switch d.proto {
			case gateway.ProtoPusher:
				// A subscription with a signature the app secret did not make.
				door = gateway.DoorSubscribe
				ws := dialDoor(t, u, nil)
				readJSON(t, ws) // connection_established
				writeJSON(t, ws, map[string]any{"event": "pusher:subscribe",
					"data": map[string]any{"channel": "private-" + memberChan, "auth": "app-key:forged"}})
				if f := readJSON(t, ws); f["event"] != "pusher:subscription_error" {
					t.Fatalf("forged subscription answered %v", f)
				}
			case gateway.ProtoCentrifuge:
				ws := dialDoor(t, u, nil)
				writeJSON(t, ws, map[string]any{"id": 1, "connect": map[string]any{"token": "not-a-jwt"}})
				if code, err := closeCode(ws); err != nil || code != 3500 {
					t.Fatalf("bad token: close %d (%v), want 3500", code, err)
				}
			case gateway.ProtoActionCable:
				ws := dialDoor(t, u+"?token=not-a-jwt", []string{actioncable.Subprotocol})
				if m := readJSON(t, ws); m["type"] != "disconnect" || m["reason"] != "unauthorized" {
					t.Fatalf("bad token answered %v", m)
				}
			}
			line := waitLine(t, logs, "auth failure", "")
			if line["level"] != "DEBUG" || line["proto"] != d.name || line["door"] != door.String() ||
				line["remote"] == "" || line["reason"] == "" {
				t.Fatalf("auth failure line %v: want DEBUG, proto %s, door %s, remote and reason", line, d.name, door)
			}
			if n := node.Stats().AuthFailures(d.proto, door); n == 0 {
				t.Fatalf("no %s auth failure counted for %s", door, d.name)
			}
		})
	}
}

// waitLine waits for the first JSON log line with msg (and, when conn is
// not empty, that conn) and returns it.
func waitLine(t *testing.T, logs *syncBuffer, msg, conn string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var rec map[string]any
			if json.Unmarshal(l, &rec) == nil && rec["msg"] == msg && (conn == "" || rec["conn"] == conn) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line for conn %q:\n%s", msg, conn, logs.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
