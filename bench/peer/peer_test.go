package peer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/bench/load"
	"switchboard/bench/peer"
	"switchboard/domain"
)

// TestPeerDeliversToCentrifugoClient drives the peer with the load tool's
// Centrifugo client: connect with a JWT, subscribe, publish over HTTP, and
// check the stamped publication arrives once; a bad token must be refused.
func TestPeerDeliversToCentrifugoClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const secret = "peer-test-secret"
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- peer.Run(ctx, peer.Config{Addr: "127.0.0.1:0", Secret: secret, Ready: func(a string) { addrc <- a }}, slog.Default())
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("peer: %v", err)
	}
	signer, _ := domain.NewSigner(secret)
	c := domain.Claims{}
	c.Subject = "u1"
	tok, err := signer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	target := load.Target{Protocol: load.Centrifugo, WSURL: "ws://" + addr + "/connection/websocket", Token: tok, Channels: []string{"dashboard.project.bench.attendees"}}
	var rec atomic.Pointer[load.Recorder]
	r := load.NewRecorder(10)
	rec.Store(r)
	d := load.NewDialer(0)
	cl, err := d.Dial(ctx, target, &rec)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer cl.Close()

	bad := target
	bad.Token = "not-a-jwt"
	if _, err := d.Dial(ctx, bad, &rec); err == nil {
		t.Error("a bad token was accepted")
	}

	now := time.Now()
	body, _ := json.Marshal(map[string]any{"channel": "dashboard.project.bench.attendees", "data": map[string]string{"first_name": load.Stamp(3, now)}})
	resp, err := http.Post("http://"+addr+"/api/publish", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("publish: %v %v", err, resp)
	}
	resp.Body.Close()
	r.Sent(3, now.UnixNano(), time.Now().UnixNano())
	deadline := time.Now().Add(5 * time.Second)
	for r.Delivery.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if res := r.Result(1); res.Delivered != 1 || res.Complete != 1 {
		t.Fatalf("delivered %d of %d", res.Delivered, res.Expected)
	}

	resp, err = http.Post("http://"+addr+"/api/publish", "application/json", strings.NewReader(`{"channel":""}`))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad publish: %v %v", err, resp)
	}
	resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
