package webhooks

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// App is what the emitter needs of a Pusher app.
type App struct {
	ID, Key, Secret string
	Hooks           []Hook
}

// EmitterConfig tunes batching. Zero values mean Pusher's: at most 50
// events or 250 ms per request per URL.
type EmitterConfig struct {
	MaxEvents int
	MaxWait   time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Emitter batches webhook events per app and URL and queues each batch as
// one delivery, then wakes the sender.
type Emitter struct {
	q      *Queue
	sender *Sender
	cfg    EmitterConfig
	apps   func(id string) (App, bool)

	mu   sync.Mutex
	bufs map[[2]string]*batch // (app id, url) → events waiting
	// cut is held from cutting a batch until it is queued, so batches
	// reach the queue (and the receiver) in the order they were cut: a
	// size flush racing a timer flush must not overtake it.
	cut sync.Mutex
}

type batch struct {
	hook   Hook
	app    App
	events []Event
	timer  *time.Timer
}

// NewEmitter returns an emitter queuing into q; apps finds an app by id.
func NewEmitter(q *Queue, sender *Sender, apps func(id string) (App, bool), cfg EmitterConfig) *Emitter {
	if cfg.MaxEvents == 0 {
		cfg.MaxEvents = 50
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Emitter{q: q, sender: sender, cfg: cfg, apps: apps, bufs: map[[2]string]*batch{}}
}

// Emit adds e to the batches of the app's hooks that want it.
func (em *Emitter) Emit(appID string, e Event) {
	app, ok := em.apps(appID)
	if !ok {
		return
	}
	for _, h := range app.Hooks {
		if !h.Wants(e) {
			continue
		}
		key := [2]string{appID, h.URL}
		em.mu.Lock()
		b := em.bufs[key]
		if b == nil {
			b = &batch{hook: h, app: app}
			em.bufs[key] = b
			b.timer = time.AfterFunc(em.cfg.MaxWait, func() { em.flush(key, b) })
		}
		b.events = append(b.events, e)
		full := len(b.events) >= em.cfg.MaxEvents
		em.mu.Unlock()
		if full {
			em.flush(key, b)
		}
	}
}

// flush queues b (once) as a delivery.
func (em *Emitter) flush(key [2]string, b *batch) {
	em.cut.Lock()
	defer em.cut.Unlock()
	em.mu.Lock()
	if em.bufs[key] != b {
		em.mu.Unlock()
		return
	}
	delete(em.bufs, key)
	b.timer.Stop()
	em.mu.Unlock()
	now := em.cfg.Now()
	body := Body(now, b.events)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := em.q.Add(ctx, b.app.ID, b.hook.URL, Headers(b.hook, b.app.Key, b.app.Secret, body), body, b.events, now); err != nil {
		em.cfg.Logger.Error("webhooks: events not queued", "app", b.app.ID, "url", b.hook.URL, "events", len(b.events), "err", err)
		return
	}
	if em.sender != nil {
		em.sender.Wake()
	}
}

// Flush queues every waiting batch now (shutdown).
func (em *Emitter) Flush() {
	em.mu.Lock()
	var all [][2]string
	var bs []*batch
	for k, b := range em.bufs {
		all = append(all, k)
		bs = append(bs, b)
	}
	em.mu.Unlock()
	for i := range all {
		em.flush(all[i], bs[i])
	}
}
