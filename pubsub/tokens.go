package pubsub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"switchboard/domain"
)

// tokenPrefix starts every API token, so one is recognisable in a log or a
// secret scanner and never mistaken for a JWT.
const tokenPrefix = "sbp_"

// APIToken is an organization's API token as listed: never the token
// itself, which only its creator saw once.
type APIToken struct {
	ID             string            `json:"id"`
	OrganizationID string            `json:"organization_id"`
	Name           string            `json:"name"`
	CreatedAt      domain.Timestamp  `json:"created_at"`
	RevokedAt      *domain.Timestamp `json:"revoked_at"`
	// Token is set once, in the answer to its creation.
	Token string `json:"token,omitempty"`
}

// Store keeps API tokens and publishes into scopes.
type Store struct {
	db *domain.DB
	// MaxPayload caps a publish's data in bytes (JSON as sent).
	MaxPayload int
}

// DefaultMaxPayload is the default cap on a publish's data: 10 KB, the
// same as an in-room publish from the browser SDK.
const DefaultMaxPayload = 10 * 1024

// NewStore returns a Store on db.
func NewStore(db *domain.DB) *Store { return &Store{db: db, MaxPayload: DefaultMaxPayload} }

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates an API token for org and returns it with the token
// itself, the only time it is ever returned.
func (s *Store) CreateToken(ctx context.Context, org, name string) (APIToken, error) {
	if !domain.ValidPubSubID(org) {
		return APIToken{}, domain.Invalid("organization_id", "must be 1 to 128 of [A-Za-z0-9_-]")
	}
	if len(name) > 200 {
		return APIToken{}, domain.Invalid("name", "must be at most 200 characters")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return APIToken{}, fmt.Errorf("pubsub: token: %w", err)
	}
	t := APIToken{
		ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: org, Name: name,
		Token: tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:]),
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	t.CreatedAt = domain.Timestamp(now)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO pubsub_api_tokens (id, organization_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, org, name, hashToken(t.Token), now); err != nil {
		return APIToken{}, fmt.Errorf("pubsub: create token: %w", err)
	}
	return t, nil
}

// RevokeToken revokes a token at once: its next use is a 401. Revoking a
// revoked token is a no-op; an unknown id is not_found.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE pubsub_api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`,
		id, time.Now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return fmt.Errorf("pubsub: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.NotFound("API token %q not found", id)
	}
	return nil
}

// Tokens lists the tokens of org, or of every organization when org is "".
func (s *Store) Tokens(ctx context.Context, org string) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, organization_id, name, created_at, revoked_at FROM pubsub_api_tokens
WHERE $1 = '' OR organization_id = $1 ORDER BY created_at, id`, org)
	if err != nil {
		return nil, fmt.Errorf("pubsub: list tokens: %w", err)
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		var t APIToken
		var created time.Time
		var revoked sql.NullTime
		if err := rows.Scan(&t.ID, &t.OrganizationID, &t.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("pubsub: list tokens: %w", err)
		}
		t.CreatedAt = domain.Timestamp(created)
		if revoked.Valid {
			r := domain.Timestamp(revoked.Time)
			t.RevokedAt = &r
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pubsub: list tokens: %w", err)
	}
	return out, nil
}

// errBadToken is the answer for a missing, unknown or revoked token: which
// one is not said, as for any credential.
func errBadToken(why string) error {
	return &domain.Error{Status: 401, Code: "unauthorized", Message: "API token " + why}
}

// Authenticate returns the organization and id of an API token. Every call
// reads the table, so a revoked token is refused from the next request on.
func (s *Store) Authenticate(ctx context.Context, tok string) (org, id string, err error) {
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) > 200 {
		return "", "", errBadToken("missing or malformed")
	}
	var revoked sql.NullTime
	err = s.db.QueryRowContext(ctx, `SELECT id, organization_id, revoked_at FROM pubsub_api_tokens WHERE token_hash = $1`, hashToken(tok)).
		Scan(&id, &org, &revoked)
	switch {
	case domain.IsNoRows(err):
		return "", "", errBadToken("unknown")
	case err != nil:
		return "", "", fmt.Errorf("pubsub: authenticate: %w", err)
	case revoked.Valid:
		return "", "", errBadToken("revoked")
	}
	return org, id, nil
}
