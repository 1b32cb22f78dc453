// Package pubsub is Livestorm-style scoped PubSub (seed 004): plugin
// servers publish over HTTP into an organization, an event or a session with
// an API token of their organization, and room participants (the browser
// SDK in pubsub/sdk) publish to each other. Publishes go through the outbox
// like every write; the channels are domain/pubsub.go's.
package pubsub

import "switchboard/domain"

// Migrations create the API token table. Only a token's SHA-256 is kept:
// the token itself is shown once, when it is created.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "pubsub", Version: 1,
		Postgres: `CREATE TABLE pubsub_api_tokens (
  id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  token_hash TEXT NOT NULL UNIQUE,
  created_at TIMESTAMPTZ NOT NULL,
  revoked_at TIMESTAMPTZ
);
CREATE INDEX pubsub_api_tokens_org ON pubsub_api_tokens (organization_id, created_at);`,
		SQLite: `CREATE TABLE pubsub_api_tokens (
  id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  token_hash TEXT NOT NULL UNIQUE,
  created_at TIMESTAMP NOT NULL,
  revoked_at TIMESTAMP
);
CREATE INDEX pubsub_api_tokens_org ON pubsub_api_tokens (organization_id, created_at);`,
	}}
}
