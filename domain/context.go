package domain

import "context"

type ctxKey int

const (
	triggerKey ctxKey = iota
	claimsKey
)

// WithTrigger returns ctx carrying tb; events built from it carry
// "x-triggered-by".
func WithTrigger(ctx context.Context, tb TriggeredBy) context.Context {
	return context.WithValue(ctx, triggerKey, tb)
}

// TriggerFrom returns the TriggeredBy set by WithTrigger.
func TriggerFrom(ctx context.Context) (TriggeredBy, bool) {
	tb, ok := ctx.Value(triggerKey).(TriggeredBy)
	return tb, ok
}

// WithClaims returns ctx carrying the caller's verified identity.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey, c)
}

// ClaimsFrom returns the identity set by WithClaims, or nil.
func ClaimsFrom(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey).(*Claims)
	return c
}
