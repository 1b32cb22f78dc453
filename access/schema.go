package access

import "switchboard/domain"

// Migrations create zones, points, credentials, rules and the scan log.
// A rule names either an attendee type or one attendee; its window bounds
// are optional (NULL = open-ended).
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "access", Version: 1,
		Postgres: `CREATE TABLE access_zones (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX access_zones_project ON access_zones (project_id, id);
CREATE TABLE access_points (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  zone_id BIGINT NOT NULL REFERENCES access_zones(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX access_points_project ON access_points (project_id, id);
CREATE TABLE access_credentials (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  attendee_id BIGINT NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  value TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  revoked_at TIMESTAMPTZ,
  UNIQUE (project_id, value)
);
CREATE TABLE access_rules (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  zone_id BIGINT NOT NULL REFERENCES access_zones(id) ON DELETE CASCADE,
  attendee_type_id BIGINT,
  attendee_id BIGINT REFERENCES attendees(id) ON DELETE CASCADE,
  starts_at TIMESTAMPTZ,
  ends_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL,
  CHECK ((attendee_type_id IS NULL) <> (attendee_id IS NULL))
);
CREATE INDEX access_rules_zone ON access_rules (zone_id);
CREATE TABLE access_scans (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  access_point_id BIGINT NOT NULL REFERENCES access_points(id) ON DELETE CASCADE,
  access_zone_id BIGINT NOT NULL REFERENCES access_zones(id) ON DELETE CASCADE,
  credential_value TEXT NOT NULL,
  credential_id BIGINT,
  attendee_id BIGINT,
  direction TEXT NOT NULL,
  granted BOOLEAN NOT NULL,
  reason TEXT,
  scanned_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX access_scans_project ON access_scans (project_id, id);
CREATE INDEX access_scans_zone ON access_scans (access_zone_id, granted, direction);`,
		SQLite: `CREATE TABLE access_zones (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE INDEX access_zones_project ON access_zones (project_id, id);
CREATE TABLE access_points (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  zone_id INTEGER NOT NULL REFERENCES access_zones(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE INDEX access_points_project ON access_points (project_id, id);
CREATE TABLE access_credentials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  attendee_id INTEGER NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  value TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  revoked_at TIMESTAMP,
  UNIQUE (project_id, value)
);
CREATE TABLE access_rules (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  zone_id INTEGER NOT NULL REFERENCES access_zones(id) ON DELETE CASCADE,
  attendee_type_id INTEGER,
  attendee_id INTEGER REFERENCES attendees(id) ON DELETE CASCADE,
  starts_at TIMESTAMP,
  ends_at TIMESTAMP,
  created_at TIMESTAMP NOT NULL,
  CHECK ((attendee_type_id IS NULL) <> (attendee_id IS NULL))
);
CREATE INDEX access_rules_zone ON access_rules (zone_id);
CREATE TABLE access_scans (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  access_point_id INTEGER NOT NULL REFERENCES access_points(id) ON DELETE CASCADE,
  access_zone_id INTEGER NOT NULL REFERENCES access_zones(id) ON DELETE CASCADE,
  credential_value TEXT NOT NULL,
  credential_id INTEGER,
  attendee_id INTEGER,
  direction TEXT NOT NULL,
  granted BOOLEAN NOT NULL,
  reason TEXT,
  scanned_at TIMESTAMP NOT NULL
);
CREATE INDEX access_scans_project ON access_scans (project_id, id);
CREATE INDEX access_scans_zone ON access_scans (access_zone_id, granted, direction);`,
	}}
}
