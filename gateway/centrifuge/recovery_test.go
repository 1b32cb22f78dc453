package centrifuge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// Subscribing (and recovering) while the channel is busy neither loses nor
// duplicates a publication: the subscriber joins the hub before reading the
// stream and drops buffered messages the reply already covered.
func TestSubscribeDuringTrafficIsGapFree(t *testing.T) {
	db := dbtest.SQLite(t, domain.CoreMigrations())
	e := start(t, db, nil)
	const ch, total = "notification-channel-42", 400
	// Through the outbox, as every publication goes: the relay numbers
	// them and keeps them in the history before the fan-out.
	publish := func(from, to int) {
		for i := from; i <= to; i++ {
			env := domain.RawEnvelope("NotificationCreated", domain.Scope{Channels: []string{ch}}, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)))
			if err := db.InTx(context.Background(), func(tx *domain.Tx) error { tx.EmitEnvelope(env); return nil }); err != nil {
				t.Error(err)
				return
			}
		}
	}
	publish(1, 20)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, err := e.node.History.Position(context.Background(), ch); err == nil && p.Offset >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first 20 publications were never relayed")
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); publish(21, total) }()

	fresh := e.dial()
	fresh.connect(e.userToken("42", time.Hour))
	fresh.send(map[string]any{"subscribe": map[string]any{"channel": ch}})
	first := fresh.read()["subscribe"].(map[string]any)
	epoch, top := first["epoch"].(string), uint64(first["offset"].(float64))

	// A second client recovers from a few publications back, mid-stream.
	rec := e.dial()
	rec.connect(e.userToken("42", time.Hour))
	from := top - 5
	rec.send(map[string]any{"subscribe": map[string]any{"channel": ch, "recover": true, "offset": from, "epoch": epoch}})
	res := rec.read()["subscribe"].(map[string]any)
	if res["recovered"] != true || uint64(res["offset"].(float64)) != from {
		t.Fatalf("recovery reply %v", res)
	}
	<-done

	check := func(name string, c *client, next uint64, pubs []any) {
		t.Helper()
		for _, p := range pubs {
			if off := uint64(p.(map[string]any)["offset"].(float64)); off != next+1 {
				t.Fatalf("%s: recovered offset %d, want %d", name, off, next+1)
			}
			next++
		}
		for next < total {
			push := c.readPush()
			pub := push["pub"].(map[string]any)
			off := uint64(pub["offset"].(float64))
			if off != next+1 {
				t.Fatalf("%s: offset %d after %d (gap or duplicate)", name, off, next)
			}
			var d struct {
				Type string
				Data struct{ N uint64 }
			}
			b, _ := json.Marshal(pub["data"])
			if json.Unmarshal(b, &d); d.Type != "NotificationCreated" || d.Data.N != off {
				t.Fatalf("%s: publication %s at offset %d", name, b, off)
			}
			next = off
		}
	}
	check("fresh", fresh, top, nil)
	pubs, _ := res["publications"].([]any)
	check("recovering", rec, from, pubs)
}
