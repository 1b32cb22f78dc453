package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/access"
	"switchboard/attendees"
	"switchboard/chat"
	"switchboard/domain"
	"switchboard/examples"
	"switchboard/forms"
	"switchboard/games"
	"switchboard/gateway"
	"switchboard/gateway/actioncable"
	"switchboard/gateway/centrifuge"
	"switchboard/gateway/pusher"
	"switchboard/gateway/webhooks"
	"switchboard/notifications"
	"switchboard/pubsub"
	"switchboard/pubsub/sdk"
	"switchboard/social"
)

// migrations lists every module's schema, core first.
func migrations() [][]domain.Migration {
	return [][]domain.Migration{
		domain.CoreMigrations(),
		gateway.Migrations(),
		attendees.Migrations(),
		// Event-management modules (they reference attendees).
		access.Migrations(),
		social.Migrations(),
		games.Migrations(),
		forms.Migrations(),
		chat.Migrations(),
		notifications.Migrations(),
		webhooks.Migrations(),
		pubsub.Migrations(),
	}
}

// serve runs the whole product until ctx ends, then shuts down in order:
// stop accepting, finish in-flight requests, let the relay forward what is
// committed and store its position, tell WebSocket clients to reconnect.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig(args)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	secret, err := cfg.secret(log)
	if err != nil {
		return err
	}
	signer, err := domain.NewSigner(secret, domain.WithMaxTTL(cfg.JWTMaxTTL))
	if err != nil {
		return err
	}
	db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, LocalWake: true, Timeout: cfg.DBTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := domain.Migrate(ctx, db, migrations()...); err != nil {
		return err
	}
	// One node relays a database: without cluster mode a second node is
	// refused here, before it listens, instead of splitting the stream
	// (outbox.Claim); in cluster mode the nodes share the events through
	// NATS and take turns relaying (cluster.go).
	broker, natsBroker, release, err := newBroker(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	defer release()

	// Community: chat answers the gateway's room-membership questions.
	chatStore := chat.NewStore(db)
	node := gateway.NewNode(&gateway.Authorizer{Membership: chatStore}, log)
	// The durable stream store: Centrifugo history and Pusher cache
	// channels register their channels with it below.
	node.History = gateway.NewHistory(db, gateway.HistoryConfig{})
	broker.Subscribe(node.DispatchBatch)
	if natsBroker != nil {
		// Presence, the per-user limit and client events span the nodes.
		if err := node.EnableCluster(newNodeID(), natsBroker.Bus()); err != nil {
			_ = broker.Close(context.Background())
			return fmt.Errorf("cluster: %w", err)
		}
		defer node.CloseCluster()
	}
	// Webhooks: a durable queue in the database; one node sends (the one
	// that relays), every node queues what happens on its connections.
	apps, err := cfg.pusherApps()
	if err != nil {
		_ = broker.Close(context.Background())
		return err
	}
	hookQueue := webhooks.NewQueue(db)
	hookSender := webhooks.NewSender(hookQueue, webhooks.SenderConfig{MaxAge: cfg.WebhookMaxAge, Logger: log})
	hookApps := map[string]webhooks.App{}
	for _, a := range apps {
		hookApps[a.ID] = webhooks.App{ID: a.ID, Key: a.Key, Secret: a.Secret, Hooks: a.Webhooks}
	}
	hookEmitter := webhooks.NewEmitter(hookQueue, hookSender, func(id string) (webhooks.App, bool) {
		a, ok := hookApps[id]
		return a, ok
	}, webhooks.EmitterConfig{Logger: log})
	trims := webhooks.TrimConfig{Logger: log}
	if cfg.WebhookLogTrim {
		trims.Events = cfg.WebhookLogRetention
	}
	if cfg.WebhookQueueTrim {
		trims.Sent = time.Hour
	}
	if cfg.WebhookErrorsTrim {
		trims.Failed = 7 * 24 * time.Hour
	}
	// The relaying node also decides the cluster-wide webhook events.
	var leading atomic.Bool
	relay, err := relayRunner(cfg, db, gateway.Pipeline{History: node.History, Broker: broker}, log, &leading,
		hookSender.Run, func(ctx context.Context) { hookQueue.RunTrims(ctx, trims) })
	if err != nil {
		_ = broker.Close(context.Background())
		return err
	}

	// The database's health is watched in the background: /healthz answers
	// at once, REST requests fail fast while it is down, and an outage is
	// logged once when it starts and once when it ends.
	healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHealth()
	health := domain.WatchHealth(healthCtx, db, log)
	e := domain.NewEcho(log)
	e.Use(domain.Guard(health, cfg.DBTimeout, "/healthz", "/readyz"))
	e.GET("/healthz", func(c echo.Context) error {
		if st := health.Status(); !st.Up {
			c.Response().Header().Set("Retry-After", "2")
			return c.JSON(http.StatusServiceUnavailable, domain.ErrorBody{Error: &domain.Error{
				Code: domain.ErrDatabaseUnavailable.Code, Message: st.Reason + " (since " + st.Since.UTC().Format(time.RFC3339) + ")"}})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok", "store": db.Dialect.String()})
	})
	// Readiness: can this node take writes and deliver events? In cluster
	// mode that also needs NATS (writes still commit without it; their
	// events wait in the outbox).
	e.GET("/readyz", func(c echo.Context) error {
		body := map[string]string{"database": "up", "broker": "local"}
		ok := true
		if st := health.Status(); !st.Up {
			body["database"], ok = "down: "+st.Reason, false
		}
		if natsBroker != nil {
			body["broker"] = "nats connected"
			if !natsBroker.Connected() {
				body["broker"], ok = "nats disconnected", false
			}
		}
		if !ok {
			c.Response().Header().Set("Retry-After", "2")
			return c.JSON(http.StatusServiceUnavailable, body)
		}
		return c.JSON(http.StatusOK, body)
	})
	api := e.Group("/api/v1", domain.Authn(signer, true))
	domain.ProjectRoutes(api, db)
	attendeeStore := attendees.NewStore(db)
	attendees.Routes(api, attendeeStore, db)
	// Event-management modules; access, games and forms ask the attendees
	// module about the attendees they name (domain.AttendeeLookup).
	access.Routes(api, access.NewStore(db, attendeeStore), db)
	social.Routes(api, social.NewStore(db), db)
	games.Routes(api, games.NewStore(db, attendeeStore), db)
	forms.Routes(api, forms.NewStore(db, attendeeStore), db)
	chat.Routes(api, chatStore, db)
	notifications.Routes(api, notifications.NewStore(db), db)
	webhooks.Routes(api, hookQueue, hookSender)
	pubsubStore := pubsub.NewStore(db)
	pubsubStore.MaxPayload = cfg.PubSubMaxPayload
	pubsub.Routes(e, api, pubsubStore, db, pubsub.RoomTokens{Signer: signer, TTL: cfg.PubSubRoomTokenTTL})
	sdk.Routes(e)
	examples.Routes(e)

	pa, err := pusher.New(node, pusher.Config{Apps: apps, Signer: signer, DB: db, Webhooks: hookEmitter, Leads: leading.Load})
	if err != nil {
		return err
	}
	pa.Routes(e)

	ca, err := newCentrifuge(cfg, node, signer, db)
	if err != nil {
		return err
	}
	ca.Routes(e)
	// ActionCable front door: @rails/actioncable consumers at /cable.
	cableChannels, err := actioncable.LoadRegistry(cfg.CableChannels)
	if err != nil {
		return err
	}
	ac, err := actioncable.New(node, actioncable.Config{
		Signer: signer, Registry: cableChannels,
		AllowedOrigins: cfg.CableAllowedOrigins, MaxSubscriptions: cfg.CableMaxSubscriptions,
	})
	if err != nil {
		return err
	}
	ac.Routes(e)
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	if routerBuilt != nil {
		routerBuilt(e)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}

	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		relay(relayCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("switchboard listening", "addr", ln.Addr().String(), "store", db.Dialect, "version", version)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopRelay()
		wg.Wait()
		_ = broker.Close(context.Background())
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownWait)
	defer cancel()
	// 1. Stop accepting and finish in-flight REST requests (their commits
	//    are already in the outbox once they return).
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	// 2. Queue the webhook events still batching, then stop the relay: it
	//    waits for the broker to fan out what it handed over and stores its
	//    delivered position (queued webhooks go out after the next start).
	hookEmitter.Flush()
	stopRelay()
	wg.Wait()
	if err := broker.Close(sctx); err != nil {
		log.Warn("broker close", "err", err)
	}
	// 3. Close WebSockets with "reconnect" codes.
	pa.Shutdown(sctx)
	ca.Shutdown(sctx)
	ac.Shutdown(sctx)
	log.Info("stopped")
	return nil
}

// routerBuilt, when set (by tests), sees serve()'s router once every route
// is registered: the authorization matrix walks the real route table.
var routerBuilt func(*echo.Echo)

// newCentrifuge builds the Centrifugo front door from the config.
func newCentrifuge(cfg config, node *gateway.Node, signer *domain.Signer, db *domain.DB) (*centrifuge.Adapter, error) {
	cc := centrifuge.Config{Signer: signer, DB: db, APIKey: cfg.APIKey, TokenTTL: cfg.RealtimeTokenTTL, Version: version,
		RoomPublishRate: cfg.PubSubPublishRate, RoomMaxPayload: cfg.PubSubMaxPayload}
	if cfg.CentrifugoConfig != "" {
		chans, err := centrifuge.LoadChannels(cfg.CentrifugoConfig)
		if err != nil {
			return nil, err
		}
		cc.Channels = chans
	}
	return centrifuge.New(node, cc)
}
