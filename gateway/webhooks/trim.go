package webhooks

import (
	"context"
	"log/slog"
	"time"
)

// TrimConfig is the three trims of the seed's timers; a zero retention
// turns that trim off.
type TrimConfig struct {
	Every  time.Duration // how often the trims run; zero means 1h
	Events time.Duration // the event log's retention
	Sent   time.Duration // sent deliveries (and their attempts)
	Failed time.Duration // failed deliveries (dead letters)
	Logger *slog.Logger
}

// RunTrims trims on schedule until ctx ends. Each trim is one DELETE by
// time, on indexed columns: it neither blocks delivery (which reads and
// updates other rows) nor REST writes.
func (q *Queue) RunTrims(ctx context.Context, cfg TrimConfig) {
	if cfg.Every == 0 {
		cfg.Every = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Events == 0 && cfg.Sent == 0 && cfg.Failed == 0 {
		return
	}
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		cut := func(d time.Duration) time.Time {
			if d <= 0 {
				return time.Time{}
			}
			return now.Add(-d)
		}
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := q.Trim(tctx, cut(cfg.Events), cut(cfg.Sent), cut(cfg.Failed))
		cancel()
		if err != nil {
			cfg.Logger.Warn("webhooks: trim", "err", err)
			continue
		}
		cfg.Logger.Info("webhooks: trimmed", "events", n["events"], "sent", n["sent"], "failed", n["failed"], "took", time.Since(now).Round(time.Millisecond))
	}
}
