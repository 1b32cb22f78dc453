package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"switchboard/domain"
)

// Lead runs relay whenever this process holds db's relay claim, until ctx
// ends: the nodes of a cluster (they share the events through NATS, see
// gateway/broker_nats.go) take turns. A node that stops or dies releases
// the claim with its database session, and a waiting node takes over
// within about a second. relay must return when its context ends; Lead
// cancels it when the claim's session is lost, since another node may
// then hold the claim.
func Lead(ctx context.Context, db *domain.DB, log *slog.Logger, relay func(ctx context.Context)) {
	waiting := false
	for ctx.Err() == nil {
		release, lost, err := claimWatched(ctx, db)
		if err != nil {
			if errors.Is(err, ErrClaimed) {
				if !waiting {
					log.Info("relay: another node relays the outbox; this one stands by")
					waiting = true
				}
			} else {
				log.Warn("relay: claim", "err", err)
			}
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		waiting = false
		log.Info("relay: this node relays the outbox")
		rctx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			relay(rctx)
		}()
		select {
		case <-stopped:
		case <-lost:
			log.Warn("relay: lost the database session holding the relay claim; stopping the relay")
			cancel()
			<-stopped
		}
		cancel()
		release()
	}
}

// claimWatched is Claim, with a channel closed when the session holding a
// PostgreSQL claim stops answering (checked every second).
func claimWatched(ctx context.Context, db *domain.DB) (release func(), lost <-chan struct{}, err error) {
	if db.Dialect != domain.Postgres {
		rel, err := Claim(ctx, db)
		return rel, nil, err
	}
	conn, key, err := claimConn(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	l := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				pctx, cancel := context.WithTimeout(context.Background(), max(db.Timeout(), 2*time.Second))
				err := conn.PingContext(pctx)
				cancel()
				if err != nil {
					close(l)
					return
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		unlock(conn, key)
	}, l, nil
}
