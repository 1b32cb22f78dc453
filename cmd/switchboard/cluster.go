package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/outbox"
)

// eventBroker is what serve needs of a broker: the gateway's seam and Close.
type eventBroker interface {
	gateway.Broker
	Close(ctx context.Context) error
}

// newBroker returns the node's broker. Without SWITCHBOARD_NATS_URL it is
// the in-process one, and this node must be the only one on the database
// (outbox.Claim refuses a second). With it, the nodes share the events of
// one JetStream stream and take turns relaying (outbox.Lead); cluster mode
// needs PostgreSQL, which every node reaches.
func newBroker(ctx context.Context, cfg config, db *domain.DB, log *slog.Logger) (eventBroker, *gateway.NATSBroker, func(), error) {
	local := gateway.LocalBrokerConfig{Coalesce: cfg.Coalesce}
	if cfg.NATSURL == "" {
		release, err := outbox.Claim(ctx, db)
		if err != nil {
			return nil, nil, nil, err
		}
		return gateway.NewLocalBrokerConfig(local), nil, release, nil
	}
	if db.Dialect != domain.Postgres {
		return nil, nil, nil, errors.New("SWITCHBOARD_NATS_URL (cluster mode) needs PostgreSQL shared by every node: set DATABASE_URL")
	}
	var dbName string
	if err := db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		return nil, nil, nil, fmt.Errorf("cluster mode: %w", err)
	}
	nb, err := gateway.NewNATSBroker(ctx, gateway.NATSConfig{URL: cfg.NATSURL, Name: dbName + "_" + db.Schema, Local: local, Logger: log})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("SWITCHBOARD_NATS_URL: %w", err)
	}
	log.Info("cluster mode", "nats", cfg.NATSURL)
	return nb, nb, func() {}, nil
}

// relayRunner returns what relays the outbox into the pipeline until its
// context ends: always on a single node, while this node holds the relay
// claim in cluster mode. The configuration is checked at once.
//
// alongside run beside the relay, on the same node and for as long (the
// webhook sender: one node sends each delivery); leading is true while
// they run. The Status returned is the one every relay of the node (one per
// turn in cluster mode) reports to, for /readyz and the metrics.
func relayRunner(cfg config, db *domain.DB, pipe gateway.Pipeline, log *slog.Logger, leading *atomic.Bool, alongside ...func(ctx context.Context)) (func(ctx context.Context), *outbox.Status, error) {
	status := &outbox.Status{}
	relayCfg := outbox.Config{
		PollInterval: cfg.PollInterval, Retention: cfg.Retention, RestartGrace: cfg.RestartGrace, Logger: log,
		Mode: outbox.Mode(cfg.RelayMode), Status: status,
	}
	if _, err := outbox.NewRelay(db, pipe, relayCfg); err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context) {
		leading.Store(true)
		defer leading.Store(false)
		var wg sync.WaitGroup
		actx, stop := context.WithCancel(ctx)
		for _, fn := range alongside {
			wg.Add(1)
			go func() { defer wg.Done(); fn(actx) }()
		}
		defer func() { stop(); wg.Wait() }()
		relay, err := outbox.NewRelay(db, pipe, relayCfg)
		if err == nil {
			err = relay.Run(ctx)
		}
		if err != nil {
			log.Error("relay stopped", "err", err)
		}
	}
	if cfg.NATSURL == "" {
		return run, status, nil
	}
	return func(ctx context.Context) { outbox.Lead(ctx, db, log, run) }, status, nil
}

// newNodeID names this process among the nodes of the cluster.
func newNodeID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
