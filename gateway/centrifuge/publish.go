package centrifuge

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/centrifugal/protocol"

	"switchboard/domain"
	"switchboard/gateway"
)

// Server API publications. Like every publication they go through the
// outbox: the request commits a row, and the relay, after the commit and in
// commit order, numbers the publication in its channel's stream (History)
// and hands it to every node. The offset therefore does not exist when the
// commit returns; Centrifugo's publish result carries it all the same, so
// publish waits for its own publication to come back from the relay (this
// node's dispatch sees it, on every node in cluster mode) and answers with
// the offset and epoch it was given, the ones subscribers see. The wait is
// bounded (Config.PublishWait): a relay that is that far behind gets the
// publication delivered all the same, and the reply then has no offset,
// as for a channel without history. Assigning the offset in the request's
// own transaction instead would mean a second numbering beside the
// relay's, or a lock on the stream's row held by every writer of a channel
// until commit; waiting keeps one numbering, the relay's, in commit order.
//
// idempotency_key: the key is claimed in the same transaction as the
// outbox row (gateway.ClaimPublishKey), per channel, for
// gateway.PublishKeyWindow (5 minutes, Centrifugo's window). A retry with
// the key publishes nothing and gets the first publication's offset and
// epoch.

type publishRequest struct {
	Channel        string          `json:"channel"`
	Data           json.RawMessage `json:"data"`
	IdempotencyKey string          `json:"idempotency_key"`
}

type broadcastRequest struct {
	Channels       []string        `json:"channels"`
	Data           json.RawMessage `json:"data"`
	IdempotencyKey string          `json:"idempotency_key"`
}

// publishResult is Centrifugo's PublishResult: offset and epoch are left
// out for a channel without history (and when the relay did not answer
// within Config.PublishWait).
type publishResult struct {
	Offset uint64 `json:"offset,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
}

type publishResponse struct {
	Error  *protocol.Error `json:"error,omitempty"`
	Result *publishResult  `json:"result,omitempty"`
}

// maxIdempotencyKey bounds a key (it is stored per channel).
const maxIdempotencyKey = 255

// serverChannel resolves a channel the server API may publish to:
// namespace channels only, since canonical channels carry domain events
// written by the modules.
func (a *Adapter) serverChannel(name string) (channel, *protocol.Error) {
	ch, perr := a.res.resolve(name)
	if perr != nil {
		return channel{}, perr
	}
	if ch.canonical {
		return channel{}, &protocol.Error{Code: errPermissionDenied.Code, Message: "permission denied: canonical channels carry domain events only"}
	}
	return ch, nil
}

func validData(data json.RawMessage) *protocol.Error {
	if !validJSON(data) || string(data) == "null" {
		return badRequest("data is required")
	}
	return nil
}

func validKey(key string) *protocol.Error {
	if len(key) > maxIdempotencyKey {
		return badRequest(fmt.Sprintf("idempotency_key is longer than %d bytes", maxIdempotencyKey))
	}
	return nil
}

func (a *Adapter) callPublish(ctx context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req publishRequest
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	ch, perr := a.serverChannel(req.Channel)
	if perr != nil {
		return nil, perr
	}
	if perr := validData(req.Data); perr != nil {
		return nil, perr
	}
	if perr := validKey(req.IdempotencyKey); perr != nil {
		return nil, perr
	}
	out, err := a.publishAPI(ctx, []channel{ch}, req.Data, req.IdempotencyKey)
	if err != nil {
		a.log.Error("api publish", "channel", ch.name, "err", err)
		return nil, errInternal
	}
	return out[0], nil
}

func (a *Adapter) callBroadcast(ctx context.Context, body json.RawMessage) (any, *protocol.Error) {
	var req broadcastRequest
	if perr := decode(body, &req); perr != nil {
		return nil, perr
	}
	if len(req.Channels) == 0 || !validJSON(req.Data) || string(req.Data) == "null" {
		return nil, badRequest("channels and data are required")
	}
	if perr := validKey(req.IdempotencyKey); perr != nil {
		return nil, perr
	}
	resp := make([]publishResponse, len(req.Channels))
	var chans []channel
	var at []int
	seen := map[string]bool{}
	for i, name := range req.Channels {
		ch, perr := a.serverChannel(name)
		if perr == nil && seen[ch.hub] {
			perr = badRequest("channel " + ch.name + " is listed twice")
		}
		if perr != nil {
			resp[i].Error = perr
			continue
		}
		seen[ch.hub] = true
		chans, at = append(chans, ch), append(at, i)
	}
	if len(chans) > 0 {
		// One envelope for every channel: one outbox row, one commit.
		out, err := a.publishAPI(ctx, chans, req.Data, req.IdempotencyKey)
		if err != nil {
			a.log.Error("api broadcast", "err", err)
			return nil, errInternal
		}
		for k, i := range at {
			resp[i].Result = &out[k]
		}
	}
	return map[string]any{"responses": resp}, nil
}

// publishAPI publishes data once to chans (one envelope, one commit), or
// not at all on a channel whose idempotency key was used within its
// window, and returns each channel's result, in order.
func (a *Adapter) publishAPI(ctx context.Context, chans []channel, data json.RawMessage, key string) ([]publishResult, error) {
	env := a.envelope(nil, data, nil)
	// Expect the publication back from the relay before it can arrive.
	wait := a.positions.expect(env.ID)
	defer a.positions.forget(env.ID)

	out := make([]publishResult, len(chans))
	dups := make([]*gateway.PublishedKey, len(chans))
	var fresh []string // hub channels env goes to
	now := time.Now()
	err := a.cfg.DB.InTx(ctx, func(tx *domain.Tx) error {
		fresh = fresh[:0]
		for i, ch := range chans {
			dups[i] = nil
			if key != "" {
				prev, dup, err := gateway.ClaimPublishKey(ctx, tx, ch.hub, key, env.ID, now)
				if err != nil {
					return err
				}
				if dup {
					dups[i] = &prev
					continue
				}
			}
			fresh = append(fresh, ch.hub)
		}
		if len(fresh) > 0 {
			env.Scope = domain.Scope{Channels: fresh}
			tx.EmitEnvelope(env)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("centrifuge: publish to outbox: %w", err)
	}

	// Bound the waits below: the relay hands over a committed publication
	// within milliseconds unless it is far behind.
	wctx, cancel := context.WithTimeout(ctx, a.cfg.PublishWait)
	defer cancel()
	var need []string
	for i, ch := range chans {
		if dups[i] == nil && ch.opts.History().Enabled() {
			need = append(need, ch.hub)
		}
	}
	got := wait.wait(wctx, need)
	for i, ch := range chans {
		if !ch.opts.History().Enabled() {
			continue
		}
		if prev := dups[i]; prev != nil {
			out[i] = a.previousResult(wctx, ch, key, *prev)
			continue
		}
		if p, ok := got[ch.hub]; ok {
			out[i] = publishResult{Offset: p.Offset, Epoch: p.Epoch}
			if key != "" {
				sctx, done := context.WithTimeout(context.WithoutCancel(ctx), historyTimeout)
				if err := gateway.StorePublishKeyPosition(sctx, a.cfg.DB, ch.hub, key, p); err != nil {
					a.log.Warn("api publish: store the idempotency key's answer", "channel", ch.name, "err", err)
				}
				done()
			}
		}
	}
	return out, nil
}

// previousResult is the answer of a publication an idempotency key named
// before: stored with the key once known, or read from the history (the
// first request may still be waiting for it).
func (a *Adapter) previousResult(ctx context.Context, ch channel, key string, prev gateway.PublishedKey) publishResult {
	if prev.Position.Offset > 0 {
		return publishResult{Offset: prev.Position.Offset, Epoch: prev.Position.Epoch}
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		p, ok, err := a.node.History.PositionOf(ctx, ch.hub, prev.EventID)
		if err == nil && ok {
			return publishResult{Offset: p.Offset, Epoch: p.Epoch}
		}
		select {
		case <-ctx.Done():
			return publishResult{}
		case <-t.C:
		}
	}
}

// publishOutbox writes one publication for chans to the outbox and returns
// after the commit: from there the relay, the broker and node.Dispatch
// deliver it like any domain event (and the History numbers it). Client
// publications use it; the server API uses publishAPI.
func (a *Adapter) publishOutbox(ctx context.Context, chans []channel, data json.RawMessage, from *gateway.ClientInfo) error {
	env := a.envelope(chans, data, from)
	if err := a.cfg.DB.InTx(ctx, func(tx *domain.Tx) error {
		tx.EmitEnvelope(env)
		return nil
	}); err != nil {
		return fmt.Errorf("centrifuge: publish to outbox: %w", err)
	}
	return nil
}

// envelope is the outbox envelope of a publication of data on chans. It is
// named after the data's "type" when it has one (the seed's {"type","data"}
// events), so logs and other consumers can tell events apart.
func (a *Adapter) envelope(chans []channel, data json.RawMessage, from *gateway.ClientInfo) domain.Envelope {
	hubs := make([]string, len(chans))
	for i, ch := range chans {
		hubs[i] = ch.hub
	}
	var typed struct {
		Type string `json:"type"`
	}
	name := "centrifugo.publication"
	if json.Unmarshal(data, &typed) == nil && typed.Type != "" && len(typed.Type) <= 200 {
		name = typed.Type
	}
	env := domain.RawEnvelope(name, domain.Scope{Channels: hubs}, data)
	env.Tags = map[string]string{tagRaw: "1"}
	if from != nil {
		env.Tags[tagFromUser] = from.UserID
		env.Tags[tagFromClient] = from.ConnID
		if len(from.Info) > 0 {
			env.Tags[tagFromInfo] = string(from.Info)
		}
	}
	return env
}
