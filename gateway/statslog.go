package gateway

import (
	"context"
	"log/slog"
	"time"
)

// LogCounts logs the node's connection counts at info level every period
// until ctx ends: connections open per protocol, and the connects,
// disconnects and auth failures since the previous line. The per-connection
// lines are at debug level; this is what an operator at info sees of the
// WebSocket side. A period in which nothing changed logs nothing, so an
// idle server stays quiet.
func (n *Node) LogCounts(ctx context.Context, period time.Duration) {
	logCounts(ctx, n.Log, period, func() counts { return countsOf(n.Stats()) })
}

// logCounts is LogCounts reading the counts with read.
func logCounts(ctx context.Context, log *slog.Logger, period time.Duration, read func() counts) {
	t := time.NewTicker(period)
	defer t.Stop()
	last := read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		if now == last {
			continue
		}
		attrs := make([]slog.Attr, 0, 2*numProtocols+3)
		for _, p := range Protocols() {
			attrs = append(attrs, slog.Int(p.String(), now.open[p]))
		}
		attrs = append(attrs,
			slog.Uint64("connects", now.connects-last.connects),
			slog.Uint64("disconnects", now.disconnects-last.disconnects),
			slog.Uint64("auth_failures", now.authFailures-last.authFailures),
			slog.Duration("period", period))
		log.LogAttrs(ctx, slog.LevelInfo, "connections", attrs...)
		last = now
	}
}

// counts is what LogCounts compares from one period to the next.
type counts struct {
	open                                [numProtocols]int
	connects, disconnects, authFailures uint64
}

func countsOf(s *Stats) counts {
	var c counts
	for _, p := range Protocols() {
		c.open[p] = s.Connections(p)
		c.connects += s.Connects(p)
		c.disconnects += s.Disconnects(p)
		for _, d := range Doors() {
			c.authFailures += s.AuthFailures(p, d)
		}
	}
	return c
}
