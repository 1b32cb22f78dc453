package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Backend control is cluster-wide: a call to node A reaches the user's
// connections on node B — a server-side subscription, an ActionCable
// broadcast, and a terminate_connections that closes the user's /cable and
// Centrifugo connections too.
func TestClusterBackendControl(t *testing.T) {
	const key = "cluster-backend-key"
	t.Setenv("SWITCHBOARD_API_KEY", key) // the nodes inherit it: server API and broadcast key
	_, _, ns, _ := newCluster(t, 2)
	a, b := ns[0], ns[1]
	jane := mint(t, "42", []string{"demo"}, false)

	// On B: a /cable consumer on her notifications, and a Centrifugo client.
	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-json"}, HandshakeTimeout: 5 * time.Second}
	cable, _, err := d.Dial("ws://"+b.addr+"/cable?token="+jane, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cable.Close()
	const ident = `{"channel":"NotificationChannel"}`
	if err := cable.WriteJSON(map[string]string{"command": "subscribe", "identifier": ident}); err != nil {
		t.Fatal(err)
	}
	waitCable(t, cable, func(m map[string]any) bool { return m["type"] == "confirm_subscription" })
	cf, _, err := websocket.DefaultDialer.Dial("ws://"+b.addr+"/connection/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if err := cf.WriteJSON(map[string]any{"id": 1, "connect": map[string]any{"token": jane}}); err != nil {
		t.Fatal(err)
	}
	waitCentrifuge(t, cf, func(m map[string]any) bool { return m["connect"] != nil })

	// Server-side subscription through A.
	if r := serverAPI(t, a, key, "subscribe", `{"user":"42","channel":"voice:calls"}`); r["error"] != nil {
		t.Fatalf("subscribe through A: %v", r)
	}
	waitCentrifuge(t, cf, func(m map[string]any) bool {
		p, _ := m["push"].(map[string]any)
		return p != nil && p["channel"] == "voice:calls" && p["subscribe"] != nil
	})
	// A publication through A, with its offset, reaches it on B.
	r := serverAPI(t, a, key, "publish", `{"channel":"voice:calls","data":{"n":1}}`)
	if res, _ := r["result"].(map[string]any); res == nil || res["offset"] != 1.0 {
		t.Fatalf("publish through A: %v", r)
	}
	waitCentrifuge(t, cf, func(m map[string]any) bool {
		p, _ := m["push"].(map[string]any)
		return p != nil && p["pub"] != nil
	})

	// An ActionCable broadcast through A reaches the consumer on B.
	if st, body := post(t, "http://"+a.addr+"/_broadcast", key, `{"stream":"notification-channel-42","data":"{\"hello\":\"cluster\"}"}`); st != http.StatusCreated {
		t.Fatalf("broadcast through A: %d %s", st, body)
	}
	waitCable(t, cable, func(m map[string]any) bool {
		msg, _ := m["message"].(map[string]any)
		return m["identifier"] == ident && msg != nil && msg["hello"] == "cluster"
	})

	// terminate_connections through A closes both on B.
	if st, body := pusherAPI(t, a, "POST", "/apps/app-id/users/42/terminate_connections", "", "{}"); st != 200 {
		t.Fatalf("terminate through A: %d %s", st, body)
	}
	waitCable(t, cable, func(m map[string]any) bool {
		return m["type"] == "disconnect" && m["reason"] == "remote" && m["reconnect"] == false
	})
	_ = cf.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := cf.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != 3503 {
				t.Fatalf("Centrifugo client on B closed with %d, want 3503", ce.Code)
			}
			break
		}
		if err != nil {
			t.Fatalf("Centrifugo client on B: %v", err)
		}
	}
}

func serverAPI(t *testing.T, n *clusterNode, key, method, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+n.addr+"/api/"+method, strings.NewReader(body))
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
		t.Fatalf("%s on %s: %d %v", method, n.name, res.StatusCode, err)
	}
	return out
}

// waitCable reads /cable frames until pred matches one.
func waitCable(t *testing.T, ws *websocket.Conn, pred func(map[string]any) bool) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("/cable: %v", err)
		}
		if pred(m) {
			return
		}
	}
}

// waitCentrifuge reads Centrifugo replies (one or more per frame) until
// pred matches one, answering pings.
func waitCentrifuge(t *testing.T, ws *websocket.Conn, pred func(map[string]any) bool) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("centrifuge: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			if len(m) == 0 {
				_ = ws.WriteMessage(websocket.TextMessage, []byte("{}"))
				continue
			}
			if pred(m) {
				return
			}
		}
	}
}
