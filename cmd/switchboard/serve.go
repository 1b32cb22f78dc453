package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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
	"switchboard/internal/listener"
	"switchboard/metrics"
	"switchboard/notifications"
	"switchboard/openapi"
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
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	gateway.SetReadMode(cfg.WSReads)
	apps, err := cfg.pusherApps()
	if err != nil {
		return err
	}
	// Production mode (PostgreSQL) refuses the public defaults before
	// anything starts.
	if err := errors.Join(cfg.productionProblems(apps)...); err != nil {
		return err
	}
	secret, err := cfg.secret(log)
	if err != nil {
		return err
	}
	signer, err := domain.NewSigner(secret, domain.WithMaxTTL(cfg.JWTMaxTTL))
	if err != nil {
		return err
	}
	origins, err := domain.ParseOrigins(cfg.AllowedOrigins)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, true)
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
	nodeID := "" // names this node in cluster mode
	if natsBroker != nil {
		// Presence, the per-user limit and client events span the nodes.
		nodeID = newNodeID()
		if err := node.EnableCluster(nodeID, natsBroker.Bus()); err != nil {
			_ = broker.Close(context.Background())
			return fmt.Errorf("cluster: %w", err)
		}
		defer node.CloseCluster()
	}
	// Webhooks: a durable queue in the database; one node sends (the one
	// that relays), every node queues what happens on its connections.
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
	relay, relayStatus, err := relayRunner(cfg, db, gateway.Pipeline{History: node.History, Broker: broker}, log, &leading,
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
	e.Pre(domain.CORS(origins))
	e.Use(domain.Guard(health, cfg.DBTimeout, "/healthz", "/readyz", "/metrics", "/openapi.json", "/sdk/*", "/examples*", "/console*"))
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
		relayState, relayOK := relayReadiness(relayStatus, natsBroker != nil, leading.Load(), cfg.ReadyMaxLag, time.Now())
		body["relay"], ok = relayState, ok && relayOK
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
	examples.Routes(e, examples.Options{Dashboard: cfg.DatabaseURL == "", AppKey: apps[0].Key})
	openapi.Routes(e) // GET /openapi.json
	// The debug console (docs/console.md); its database routes take the
	// guard themselves, so the page and its live log work while the
	// database is down.
	cons, err := newConsole(consoleDeps{cfg: cfg, jwtSecret: secret, signer: signer, apps: apps, node: node, nodeID: nodeID,
		db: db, health: health, relay: relayStatus, leading: &leading, hooks: hookQueue, sender: hookSender, nats: natsBroker, log: log})
	if err != nil {
		return err
	}
	defer cons.Close()
	cons.Routes(e)

	pa, err := pusher.New(node, pusher.Config{Apps: apps, Signer: signer, DB: db, Webhooks: hookEmitter, Leads: leading.Load, Origins: &origins})
	if err != nil {
		return err
	}
	pa.Routes(e)

	ca, err := newCentrifuge(cfg, node, signer, db, &origins)
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
		AllowedOrigins: cfg.CableAllowedOrigins, MaxSubscriptions: cfg.CableMaxSubscriptions, Origins: &origins,
		DB: db, BroadcastKey: cfg.broadcastKey(),
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
	metricsSrc := metrics.Sources{Node: node, Relay: relayStatus, DB: db, Webhooks: hookSender, Version: version}
	if natsBroker != nil {
		metricsSrc.NATS = natsBroker
	}
	stopMetrics, err := serveMetrics(cfg, e, metricsSrc, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	go node.LogCounts(healthCtx, time.Minute)

	if routerBuilt != nil {
		routerBuilt(e)
	}
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	ln = listener.WaitForData(ln, freshConnWait)
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(cons.Close) // open console streams would hold Shutdown
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("SWITCHBOARD_TLS_CERT / SWITCHBOARD_TLS_KEY: %w", err)
		}
		// HTTP/1.1 only: WebSocket upgrades need it, and browsers open
		// their sockets on a connection of their own anyway.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}

	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		relay(relayCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logEndpoints(log, cfg, ln.Addr(), apps[0].Key, db.Dialect.String())

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
func newCentrifuge(cfg config, node *gateway.Node, signer *domain.Signer, db *domain.DB, origins *domain.Origins) (*centrifuge.Adapter, error) {
	cc := centrifuge.Config{Signer: signer, DB: db, APIKey: cfg.APIKey, TokenTTL: cfg.RealtimeTokenTTL, Version: version,
		RoomPublishRate: cfg.PubSubPublishRate, RoomMaxPayload: cfg.PubSubMaxPayload, Origins: origins}
	if cfg.CentrifugoConfig != "" {
		chans, err := centrifuge.LoadChannels(cfg.CentrifugoConfig)
		if err != nil {
			return nil, err
		}
		cc.Channels = chans
	}
	return centrifuge.New(node, cc)
}

// freshConnWait is how long a new connection may stay silent. The header
// timeout starts with its first bytes (listener.WaitForData): HTTP clients
// open connections ahead of use, and one closed under them by the header
// timeout fails its first request with EOF.
const freshConnWait = 2 * time.Minute

// listen opens the one listener, saying what to do when it cannot.
func listen(cfg config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen %s: the address is in use (another switchboard?): stop that process or set SWITCHBOARD_ADDR (or --addr) to a free address: %w", cfg.Addr, err)
	case err != nil:
		return nil, fmt.Errorf("listen %s: check SWITCHBOARD_ADDR (host:port, e.g. 127.0.0.1:8080 or :8080): %w", cfg.Addr, err)
	}
	return ln, nil
}

// logEndpoints is the start-up line: every URL a client needs, the store,
// the mode and the Pusher app key.
func logEndpoints(log *slog.Logger, cfg config, addr net.Addr, appKey, store string) {
	host := addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	scheme, ws := "http", "ws"
	if cfg.TLSCert != "" {
		scheme, ws = "https", "wss"
	}
	mode := "embedded (development)"
	if cfg.DatabaseURL != "" {
		mode = "production"
	}
	if cfg.NATSURL != "" {
		mode += ", cluster"
	}
	log.Info("switchboard listening",
		"url", scheme+"://"+host,
		"rest", scheme+"://"+host+"/api/v1",
		"pusher", ws+"://"+host+"/app/"+appKey,
		"pusher_auth", scheme+"://"+host+"/broadcasting/auth",
		"centrifugo", ws+"://"+host+"/connection/websocket",
		"actioncable", ws+"://"+host+"/cable",
		"pubsub_sdk", scheme+"://"+host+"/sdk/pubsub.js",
		"app_key", appKey, "store", store, "mode", mode, "version", version)
}
