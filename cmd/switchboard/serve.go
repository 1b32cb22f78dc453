package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/attendees"
	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/pusher"
)

// migrations lists every module's schema, core first.
func migrations() [][]domain.Migration {
	return [][]domain.Migration{
		domain.CoreMigrations(),
		attendees.Migrations(),
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
	signer, err := domain.NewSigner(secret)
	if err != nil {
		return err
	}
	db, err := domain.Open(ctx, domain.OpenConfig{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := domain.Migrate(ctx, db, migrations()...); err != nil {
		return err
	}

	broker := gateway.NewLocalBroker()
	node := gateway.NewNode(&gateway.Authorizer{}, log)
	broker.Subscribe(node.Dispatch)
	relay, err := domain.NewRelay(db, broker.Publish, domain.RelayConfig{
		PollInterval: cfg.PollInterval, Retention: cfg.Retention, Logger: log,
	})
	if err != nil {
		return err
	}

	e := domain.NewEcho(log)
	e.GET("/healthz", func(c echo.Context) error {
		if err := db.PingContext(c.Request().Context()); err != nil {
			return &domain.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "database unreachable"}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok", "store": db.Dialect.String()})
	})
	api := e.Group("/api/v1", domain.Authn(signer, true))
	domain.ProjectRoutes(api, db)
	attendees.Routes(api, attendees.NewStore(db), db)

	pa, err := pusher.New(node, pusher.Config{
		Apps:   []pusher.App{{ID: cfg.AppID, Key: cfg.AppKey, Secret: cfg.AppSecret}},
		Signer: signer,
	})
	if err != nil {
		return err
	}
	pa.Routes(e)

	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
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
		if err := relay.Run(relayCtx); err != nil {
			log.Error("relay stopped", "err", err)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("switchboard listening", "addr", ln.Addr().String(), "store", db.Dialect, "version", version)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopRelay()
		wg.Wait()
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
	// 2. Stop the relay: it commits the position of what it forwarded.
	stopRelay()
	wg.Wait()
	// 3. Close WebSockets with "reconnect" codes.
	pa.Shutdown(sctx)
	log.Info("stopped")
	return nil
}
