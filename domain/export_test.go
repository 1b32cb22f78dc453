package domain

import "context"

// ShiftPlaceholders exposes shiftPlaceholders to the external tests.
var ShiftPlaceholders = shiftPlaceholders

// WithIdempotencyClaim puts a key claim on ctx as the Idempotent middleware
// does.
func WithIdempotencyClaim(ctx context.Context, scope, key, attempt string) context.Context {
	return context.WithValue(ctx, idemClaimKey{}, idemClaim{scope: scope, key: key, attempt: attempt})
}
