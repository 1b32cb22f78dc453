package gateway

import (
	"context"

	"switchboard/domain"
)

// Pipeline is the outbox relay's sink for the gateway (it satisfies
// outbox.Sink): it keeps events in the durable History first, then hands
// them to the Broker, and confirms once every hub fanned them out.
type Pipeline struct {
	// History may be nil (no channel keeps a stream).
	History *History
	Broker  Broker
}

// Keep numbers and stores the events of history-enabled channels through
// q: the relay's transaction, or its autocommit session on PostgreSQL,
// where History writes in one statement (see KeepsInOneStatement).
func (p Pipeline) Keep(ctx context.Context, q domain.Querier, envs []domain.Envelope) error {
	if p.History == nil {
		return nil
	}
	return p.History.keep(ctx, q, envs)
}

// KeepsInOneStatement tells the relay that Keep writes at most one
// statement on PostgreSQL (History.keep), so it needs no transaction there.
func (p Pipeline) KeepsInOneStatement() bool { return true }

// Recall finds the offsets of events kept before a restart.
func (p Pipeline) Recall(ctx context.Context, envs []domain.Envelope) error {
	if p.History == nil {
		return nil
	}
	return p.History.recall(ctx, envs)
}

// Deliver hands envs to the broker; done is called after the fan-out.
func (p Pipeline) Deliver(ctx context.Context, envs []domain.Envelope, done func()) error {
	return p.Broker.Publish(ctx, envs, done)
}

// Prune prunes the history with the outbox.
func (p Pipeline) Prune(ctx context.Context) (int64, error) {
	if p.History == nil {
		return 0, nil
	}
	return p.History.Prune(ctx)
}
