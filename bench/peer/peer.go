// Package peer is the reference server of the benchmarks: the smallest
// useful server on github.com/centrifugal/centrifuge (the library Centrifugo
// is built on), serving the same channel and payloads as Switchboard so one
// load tool can drive both in the same run and compare them.
package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/golang-jwt/jwt/v5"
)

// Config configures the peer.
type Config struct {
	// Addr is the listen address ("127.0.0.1:0" for a random port).
	Addr string
	// Secret verifies connection JWTs (HS256), the same secret Switchboard
	// signs with, so the load tool mints one kind of token for both.
	Secret string
	// Ready, when set, receives the bound address once listening.
	Ready func(addr string)
	// Redis, when set (host:port), makes the peer one node of a cluster on
	// the library's Redis broker, the reference for the cluster benchmark.
	Redis string
}

// publishRequest is the body of POST /api/publish (Centrifugo's server API
// shape): data is published to channel as is.
type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// Run serves until ctx ends. Endpoints: /connection/websocket (Centrifugo
// client protocol v2 JSON), POST /api/publish, GET /debug/pprof/*.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelError,
		LogHandler: func(e centrifuge.LogEntry) { log.Warn(e.Message, "fields", e.Fields) }})
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	if cfg.Redis != "" {
		shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: cfg.Redis})
		if err != nil {
			return fmt.Errorf("peer: redis %s: %w", cfg.Redis, err)
		}
		broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{Shards: []*centrifuge.RedisShard{shard}})
		if err != nil {
			return fmt.Errorf("peer: redis broker: %w", err)
		}
		node.SetBroker(broker)
	}
	key := []byte(cfg.Secret)
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		var claims jwt.RegisteredClaims
		_, err := jwt.ParseWithClaims(e.Token, &claims, func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{"HS256"}))
		if err != nil || claims.Subject == "" {
			return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
		}
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: claims.Subject}}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		// Same rule as Switchboard's public bench channel: any authenticated
		// client may read any channel.
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return fmt.Errorf("peer: run: %w", err)
	}
	mux := http.NewServeMux()
	// Buffer settings as close as the library allows to Switchboard's
	// (512-byte read buffer, pooled write buffer).
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		ReadBufferSize: 512, UseWriteBufferPool: true,
		CheckOrigin: func(*http.Request) bool { return true },
	}))
	mux.HandleFunc("POST /api/publish", func(w http.ResponseWriter, r *http.Request) {
		var in publishRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			err = json.Unmarshal(body, &in)
		}
		if err != nil || in.Channel == "" || len(in.Data) == 0 {
			http.Error(w, `{"error":{"code":"bad_request","message":"want {channel, data}"}}`, http.StatusBadRequest)
			return
		}
		if _, err := node.Publish(in.Channel, in.Data); err != nil {
			http.Error(w, `{"error":{"code":"internal","message":"publish failed"}}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":{}}`))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("peer: listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("peer: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := node.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "closed") {
		return fmt.Errorf("peer: shutdown: %w", err)
	}
	return nil
}
