package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"switchboard/domain"
)

// NATSBroker is the Broker of cluster mode. Publish (called by the relay,
// on the one node that holds the relay claim) forwards events to a
// JetStream stream, each with its event id as message id, so a batch sent
// again after a crash or a failover is dropped by JetStream's duplicate
// window. Every node consumes the stream in order and hands the events to
// its LocalBroker, whose subscribers fan them out to the node's own
// connections: one stream, one order, on every node.
type NATSBroker struct {
	cfg     NATSConfig
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	local   *LocalBroker

	forward chan forwardBatch
	stop    chan struct{}
	wg      sync.WaitGroup
	consume jetstream.ConsumeContext
	closer  sync.Once
}

type forwardBatch struct {
	envs []domain.Envelope
	done func()
}

// NATSConfig configures NewNATSBroker.
type NATSConfig struct {
	// URL is one or more comma-separated nats:// URLs (SWITCHBOARD_NATS_URL).
	URL string
	// Name tells the clusters of different databases apart on one NATS:
	// the stream is SWITCHBOARD_<Name>. Nodes of one cluster share it.
	Name string
	// MaxAge bounds how long the stream keeps events. Zero means 1h:
	// nodes read only new events, the stream is a conduit, not the history.
	MaxAge time.Duration
	// Duplicates is JetStream's duplicate window: a batch forwarded again
	// within it (relay failover, retry) is dropped. Zero means 2 minutes.
	Duplicates time.Duration
	// Local configures the node's own fan-out queue.
	Local LocalBrokerConfig
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

var streamUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// NewNATSBroker connects to NATS (failing at once, naming the URL, when no
// server answers), creates or updates the stream and starts consuming it.
// Later losses of the connection are retried for ever.
func NewNATSBroker(ctx context.Context, cfg NATSConfig) (*NATSBroker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	name := strings.ToUpper(streamUnsafe.ReplaceAllString(cfg.Name, "_"))
	if name == "" {
		name = "DEFAULT"
	}
	log := cfg.Logger
	nc, err := nats.Connect(cfg.URL,
		nats.Name("switchboard"),
		nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Error("nats: disconnected; events wait in the outbox until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats: reconnected", "server", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	b := &NATSBroker{
		cfg: cfg, nc: nc, js: js,
		subject: "switchboard." + strings.ToLower(name) + ".events",
		local:   NewLocalBrokerConfig(cfg.Local),
		forward: make(chan forwardBatch, 64),
		stop:    make(chan struct{}),
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{
		Name:       "SWITCHBOARD_" + name,
		Subjects:   []string{b.subject},
		Storage:    jetstream.FileStorage,
		MaxAge:     cfg.MaxAge,
		Duplicates: cfg.Duplicates,
		Discard:    jetstream.DiscardOld,
	})
	if err != nil {
		b.local.Close(context.Background())
		nc.Close()
		return nil, fmt.Errorf("nats %s: stream: %w", cfg.URL, err)
	}
	// A node consumes from what arrives after its start: its connections
	// are new, and what they missed they recover from the durable history.
	cons, err := stream.OrderedConsumer(sctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.local.Close(context.Background())
		nc.Close()
		return nil, fmt.Errorf("nats %s: consumer: %w", cfg.URL, err)
	}
	b.consume, err = cons.Consume(b.received, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Debug("nats: consumer", "err", err)
	}))
	if err != nil {
		b.local.Close(context.Background())
		nc.Close()
		return nil, fmt.Errorf("nats %s: consume: %w", cfg.URL, err)
	}
	b.wg.Add(1)
	go b.forwarder()
	return b, nil
}

// received hands one event of the stream to the node's fan-out.
func (b *NATSBroker) received(msg jetstream.Msg) {
	var env domain.Envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil {
		b.cfg.Logger.Error("nats: undecodable event skipped", "err", err)
		return
	}
	if err := b.local.Publish(context.Background(), []domain.Envelope{env}, nil); err != nil {
		b.cfg.Logger.Debug("nats: event after close dropped", "id", env.ID)
	}
}

// Publish implements Broker: envs are forwarded to the stream in order,
// retried until JetStream has them; done is called then. It blocks while
// too many batches wait (NATS down), which holds the relay, so events wait
// in the outbox, not in memory.
func (b *NATSBroker) Publish(ctx context.Context, envs []domain.Envelope, done func()) error {
	select {
	case <-b.stop:
		return ErrBrokerClosed
	default:
	}
	select {
	case b.forward <- forwardBatch{envs: envs, done: done}:
		return nil
	case <-b.stop:
		return ErrBrokerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *NATSBroker) forwarder() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case fb := <-b.forward:
			failing := false
			for {
				err := b.send(fb.envs)
				if err == nil {
					break
				}
				if !failing {
					b.cfg.Logger.Warn("nats: forwarding events failed; retrying every second", "err", err)
					failing = true
				}
				select {
				case <-b.stop:
					return // not done: the relay sends them again after its restart
				case <-time.After(time.Second):
				}
			}
			if failing {
				b.cfg.Logger.Info("nats: forwarding events again")
			}
			if fb.done != nil {
				fb.done()
			}
		}
	}
}

// send publishes envs and waits for every acknowledgement.
func (b *NATSBroker) send(envs []domain.Envelope) error {
	futures := make([]jetstream.PubAckFuture, 0, len(envs))
	for _, env := range envs {
		data, err := json.Marshal(env)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", env.ID, err)
		}
		f, err := b.js.PublishAsync(b.subject, data, jetstream.WithMsgID(env.ID))
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish: %w", err)
		case <-timeout.C:
			return errors.New("publish: no acknowledgement within 10 s")
		case <-b.stop:
			return ErrBrokerClosed
		}
	}
	return nil
}

// Subscribe implements Broker: fn gets the stream's events, in order.
func (b *NATSBroker) Subscribe(fn func([]domain.Envelope)) { b.local.Subscribe(fn) }

// Connected reports whether the NATS connection is up (readiness).
func (b *NATSBroker) Connected() bool { return b.nc.Status() == nats.CONNECTED }

// Reconnects is how many times the NATS connection was re-established
// (metrics).
func (b *NATSBroker) Reconnects() uint64 { return b.nc.Stats().Reconnects }

// Close stops forwarding (batches not yet acknowledged are sent again by
// the next relay), stops consuming, lets the local fan-out finish and
// closes the connection.
func (b *NATSBroker) Close(ctx context.Context) error {
	var err error
	b.closer.Do(func() {
		close(b.stop)
		b.consume.Stop()
		b.wg.Wait()
		err = b.local.Close(ctx)
		b.nc.Close()
	})
	return err
}

var _ Broker = (*NATSBroker)(nil)

// Bus returns the cluster bus (peers.go) on this broker's connection: a
// core NATS subject beside the stream's, for what lives only as long as
// connections do.
func (b *NATSBroker) Bus() Bus {
	return &natsBus{nc: b.nc, subject: strings.TrimSuffix(b.subject, ".events") + ".cluster"}
}

type natsBus struct {
	nc      *nats.Conn
	subject string
}

func (nb *natsBus) Publish(data []byte) error { return nb.nc.Publish(nb.subject, data) }

// Subscribe calls fn for each message, one at a time, in arrival order.
func (nb *natsBus) Subscribe(fn func(data []byte)) error {
	_, err := nb.nc.Subscribe(nb.subject, func(m *nats.Msg) { fn(m.Data) })
	return err
}
