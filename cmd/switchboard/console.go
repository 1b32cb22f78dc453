package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync/atomic"

	"switchboard/console"
	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/pusher"
	"switchboard/gateway/webhooks"
	"switchboard/outbox"
)

// consoleDeps are what the debug console reads, from serve's wiring.
type consoleDeps struct {
	cfg       config
	jwtSecret string
	signer    *domain.Signer
	apps      []pusher.App
	node      *gateway.Node
	nodeID    string // "" on a single node
	db        *domain.DB
	health    *domain.Health
	relay     *outbox.Status
	leading   *atomic.Bool
	hooks     *webhooks.Queue
	sender    *webhooks.Sender
	nats      *gateway.NATSBroker // nil on a single node
	log       *slog.Logger
}

// newConsole builds the debug console (docs/console.md): /console behind
// an admin login. Its test events are written to the outbox like any other
// event, in a transaction of their own, so they are correlated (the
// request's x-triggered-by) and durable.
func newConsole(d consoleDeps) (*console.Console, error) {
	var apps []console.App
	for _, a := range d.apps {
		if a.Enabled == nil || *a.Enabled {
			apps = append(apps, console.App{ID: a.ID, Secret: a.Secret})
		}
	}
	cc := console.Config{
		Node: d.node, Signer: d.signer, SessionSecret: consoleSessionSecret(d.jwtSecret), Apps: apps,
		Publish: func(ctx context.Context, env domain.Envelope) error {
			return d.db.InTx(ctx, func(tx *domain.Tx) error {
				tx.EmitEnvelope(env)
				return nil
			})
		},
		Relay:    d.relay,
		Backlog:  func(ctx context.Context) (int64, error) { return outbox.Backlog(ctx, d.db) },
		Webhooks: d.hooks, WakeWebhooks: d.sender.Wake,
		DBGuard: domain.Guard(d.health, d.cfg.DBTimeout),
		NodeID:  d.nodeID,
		Logger:  d.log,
	}
	if d.nats != nil {
		// Every node relays by turns (cluster.go): the node holding the
		// claim is the one whose lag means something.
		cc.Relaying = d.leading.Load
		cc.Bus = d.nats.ConsoleBus()
	}
	c, err := console.New(cc)
	if err != nil {
		return nil, fmt.Errorf("debug console: %w", err)
	}
	return c, nil
}

// consoleSessionSecret derives the console's session key from the JWT
// secret: every node of a cluster derives the same, and a session token
// is no JWT the other doors accept.
func consoleSessionSecret(jwtSecret string) string {
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("switchboard debug console sessions v1"))
	return hex.EncodeToString(m.Sum(nil))
}
