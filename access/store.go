package access

import (
	"context"
	"strings"
	"time"

	"switchboard/domain"
)

// Zone is an area whose entry is controlled.
type Zone struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Point is a kiosk or gate of a zone.
type Point struct {
	ID           int64     `json:"id"`
	AccessZoneID int64     `json:"access_zone_id"`
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
}

// Credential is a value an attendee presents (badge barcode, NFC id).
type Credential struct {
	ID         int64      `json:"id"`
	AttendeeID int64      `json:"attendee_id"`
	Value      string     `json:"value"`
	CreatedAt  time.Time  `json:"created_at"`
	Revoked    bool       `json:"revoked"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Rule lets an attendee type, or one attendee, into a zone, optionally only
// between StartsAt (inclusive) and EndsAt (exclusive).
type Rule struct {
	ID             int64      `json:"id"`
	AccessZoneID   int64      `json:"access_zone_id"`
	AttendeeTypeID *int64     `json:"attendee_type_id"`
	AttendeeID     *int64     `json:"attendee_id"`
	StartsAt       *time.Time `json:"starts_at"`
	EndsAt         *time.Time `json:"ends_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Occupancy is how many people are in a zone: granted ins minus granted outs.
type Occupancy struct {
	AccessZoneID int64 `json:"access_zone_id"`
	In           int64 `json:"in"`
	Out          int64 `json:"out"`
	Occupancy    int64 `json:"occupancy"`
}

// Store keeps the access configuration and the scan log.
type Store struct {
	db *domain.DB
	// attendees answers for the attendees that credentials, rules and
	// scans name.
	attendees domain.AttendeeLookup
	// now is the clock of scan decisions.
	now func() time.Time
}

// NewStore returns a Store on db that asks attendees about attendees.
func NewStore(db *domain.DB, attendees domain.AttendeeLookup) *Store {
	return &Store{db: db, attendees: attendees, now: func() time.Time { return time.Now().UTC().Truncate(time.Second) }}
}

// staff is required to change the configuration: a kiosk's project token
// may scan and read, not let people in by writing rules.
func staff(ctx context.Context) error {
	if cl := domain.ClaimsFrom(ctx); cl == nil || !cl.Admin {
		return domain.Forbidden("changing access control needs a staff (admin) token")
	}
	return nil
}

func name(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 200 {
		return "", domain.Invalid("name", "is required (at most 200 characters)")
	}
	return s, nil
}

// ZoneInput creates a zone.
type ZoneInput struct {
	Name string `json:"name"`
}

// CreateZone stores a zone.
func (s *Store) CreateZone(ctx context.Context, slug string, in ZoneInput) (Zone, error) {
	if err := staff(ctx); err != nil {
		return Zone{}, err
	}
	n, err := name(in.Name)
	if err != nil {
		return Zone{}, err
	}
	z := Zone{Name: n, CreatedAt: s.now()}
	err = s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		z.ProjectID = p.ID
		return tx.QueryRowContext(ctx, `INSERT INTO access_zones (project_id, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
			p.ID, z.Name, z.CreatedAt).Scan(&z.ID)
	})
	return z, err
}

func getZone(ctx context.Context, q domain.Querier, projectID, id int64) (Zone, error) {
	var z Zone
	err := q.QueryRowContext(ctx, `SELECT id, project_id, name, created_at FROM access_zones WHERE project_id = $1 AND id = $2`,
		projectID, id).Scan(&z.ID, &z.ProjectID, &z.Name, &z.CreatedAt)
	if domain.IsNoRows(err) {
		return Zone{}, domain.NotFound("access zone %d not found", id)
	}
	z.CreatedAt = z.CreatedAt.UTC()
	return z, err
}

// GetZone loads one zone.
func (s *Store) GetZone(ctx context.Context, slug string, id int64) (Zone, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Zone{}, err
	}
	return getZone(ctx, s.db, p.ID, id)
}

// ListZones pages through the project's zones by id.
func (s *Store) ListZones(ctx context.Context, slug string, page domain.Page) (domain.List[Zone], error) {
	return list(ctx, s, slug, page, `SELECT id, project_id, name, created_at FROM access_zones
WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, func(r scanner) (Zone, error) {
		var z Zone
		err := r.Scan(&z.ID, &z.ProjectID, &z.Name, &z.CreatedAt)
		z.CreatedAt = z.CreatedAt.UTC()
		return z, err
	}, func(z Zone) int64 { return z.ID })
}

// Occupancy counts the zone's granted ins and outs.
func (s *Store) Occupancy(ctx context.Context, slug string, zoneID int64) (Occupancy, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Occupancy{}, err
	}
	if _, err := getZone(ctx, s.db, p.ID, zoneID); err != nil {
		return Occupancy{}, err
	}
	o := Occupancy{AccessZoneID: zoneID}
	err = s.db.QueryRowContext(ctx, `SELECT
  COALESCE(SUM(CASE WHEN direction = 'in' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN direction = 'out' THEN 1 ELSE 0 END), 0)
FROM access_scans WHERE access_zone_id = $1 AND granted`, zoneID).Scan(&o.In, &o.Out)
	o.Occupancy = o.In - o.Out
	return o, err
}

// PointInput creates an access point.
type PointInput struct {
	AccessZoneID int64  `json:"access_zone_id"`
	Name         string `json:"name"`
}

// CreatePoint stores an access point of a zone.
func (s *Store) CreatePoint(ctx context.Context, slug string, in PointInput) (Point, error) {
	if err := staff(ctx); err != nil {
		return Point{}, err
	}
	n, err := name(in.Name)
	if err != nil {
		return Point{}, err
	}
	if in.AccessZoneID < 1 {
		return Point{}, domain.Invalid("access_zone_id", "is required (a positive integer)")
	}
	pt := Point{AccessZoneID: in.AccessZoneID, Name: n, CreatedAt: s.now()}
	err = s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := getZone(ctx, tx, p.ID, in.AccessZoneID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO access_points (project_id, zone_id, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			p.ID, pt.AccessZoneID, pt.Name, pt.CreatedAt).Scan(&pt.ID)
	})
	return pt, err
}

func scanPoint(r scanner) (Point, error) {
	var pt Point
	err := r.Scan(&pt.ID, &pt.AccessZoneID, &pt.Name, &pt.CreatedAt)
	pt.CreatedAt = pt.CreatedAt.UTC()
	return pt, err
}

func getPoint(ctx context.Context, q domain.Querier, projectID, id int64) (Point, error) {
	pt, err := scanPoint(q.QueryRowContext(ctx, `SELECT id, zone_id, name, created_at FROM access_points WHERE project_id = $1 AND id = $2`,
		projectID, id))
	if domain.IsNoRows(err) {
		return Point{}, domain.NotFound("access point %d not found", id)
	}
	return pt, err
}

// ListPoints pages through the project's access points by id.
func (s *Store) ListPoints(ctx context.Context, slug string, page domain.Page) (domain.List[Point], error) {
	return list(ctx, s, slug, page, `SELECT id, zone_id, name, created_at FROM access_points
WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, scanPoint, func(p Point) int64 { return p.ID })
}

// CredentialInput binds a credential value to an attendee.
type CredentialInput struct {
	AttendeeID int64  `json:"attendee_id"`
	Value      string `json:"value"`
}

// CreateCredential binds a value to an attendee; a value is unique in a
// project (revoked ones included, so a lost badge can't come back).
func (s *Store) CreateCredential(ctx context.Context, slug string, in CredentialInput) (Credential, error) {
	if err := staff(ctx); err != nil {
		return Credential{}, err
	}
	if in.Value == "" || len(in.Value) > 255 {
		return Credential{}, domain.Invalid("value", "is required (at most 255 characters)")
	}
	if in.AttendeeID < 1 {
		return Credential{}, domain.Invalid("attendee_id", "is required (a positive integer)")
	}
	c := Credential{AttendeeID: in.AttendeeID, Value: in.Value, CreatedAt: s.now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := s.attendees.FindAttendee(ctx, tx, p.ID, in.AttendeeID); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO access_credentials (project_id, attendee_id, value, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			p.ID, c.AttendeeID, c.Value, c.CreatedAt).Scan(&c.ID)
		if domain.IsUniqueViolation(err) {
			return domain.Conflict("credential value %q is already in use", in.Value)
		}
		return err
	})
	return c, err
}

const credentialCols = `id, attendee_id, value, created_at, revoked_at`

func scanCredential(r scanner) (Credential, error) {
	var c Credential
	err := r.Scan(&c.ID, &c.AttendeeID, &c.Value, &c.CreatedAt, &c.RevokedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	if c.RevokedAt != nil {
		t := c.RevokedAt.UTC()
		c.RevokedAt, c.Revoked = &t, true
	}
	return c, err
}

// RevokeCredential revokes a credential; revoking twice keeps the first time.
func (s *Store) RevokeCredential(ctx context.Context, slug string, id int64) (Credential, error) {
	if err := staff(ctx); err != nil {
		return Credential{}, err
	}
	var c Credential
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE access_credentials SET revoked_at = $1 WHERE project_id = $2 AND id = $3 AND revoked_at IS NULL`,
			s.now(), p.ID, id); err != nil {
			return err
		}
		c, err = scanCredential(tx.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM access_credentials WHERE project_id = $1 AND id = $2`, p.ID, id))
		if domain.IsNoRows(err) {
			return domain.NotFound("credential %d not found", id)
		}
		return err
	})
	return c, err
}

// ListCredentials pages through the project's credentials by id.
func (s *Store) ListCredentials(ctx context.Context, slug string, page domain.Page) (domain.List[Credential], error) {
	return list(ctx, s, slug, page, `SELECT `+credentialCols+` FROM access_credentials
WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, scanCredential, func(c Credential) int64 { return c.ID })
}

// RuleInput creates a rule: exactly one of AttendeeTypeID and AttendeeID.
type RuleInput struct {
	AccessZoneID   int64      `json:"access_zone_id"`
	AttendeeTypeID *int64     `json:"attendee_type_id"`
	AttendeeID     *int64     `json:"attendee_id"`
	StartsAt       *time.Time `json:"starts_at"`
	EndsAt         *time.Time `json:"ends_at"`
}

func (in RuleInput) validate() error {
	if in.AccessZoneID < 1 {
		return domain.Invalid("access_zone_id", "is required (a positive integer)")
	}
	if (in.AttendeeTypeID == nil) == (in.AttendeeID == nil) {
		return domain.Invalid("attendee_type_id", "give exactly one of attendee_type_id and attendee_id")
	}
	if in.AttendeeTypeID != nil && *in.AttendeeTypeID < 1 {
		return domain.Invalid("attendee_type_id", "must be a positive integer")
	}
	if in.AttendeeID != nil && *in.AttendeeID < 1 {
		return domain.Invalid("attendee_id", "must be a positive integer")
	}
	if in.StartsAt != nil && in.EndsAt != nil && !in.EndsAt.After(*in.StartsAt) {
		return domain.Invalid("ends_at", "must be after starts_at")
	}
	return nil
}

// CreateRule stores a rule.
func (s *Store) CreateRule(ctx context.Context, slug string, in RuleInput) (Rule, error) {
	if err := staff(ctx); err != nil {
		return Rule{}, err
	}
	if err := in.validate(); err != nil {
		return Rule{}, err
	}
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	r := Rule{AccessZoneID: in.AccessZoneID, AttendeeTypeID: in.AttendeeTypeID, AttendeeID: in.AttendeeID,
		StartsAt: utc(in.StartsAt), EndsAt: utc(in.EndsAt), CreatedAt: s.now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := getZone(ctx, tx, p.ID, in.AccessZoneID); err != nil {
			return err
		}
		if in.AttendeeID != nil {
			if _, err := s.attendees.FindAttendee(ctx, tx, p.ID, *in.AttendeeID); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO access_rules (project_id, zone_id, attendee_type_id, attendee_id, starts_at, ends_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, p.ID, r.AccessZoneID, r.AttendeeTypeID, r.AttendeeID, r.StartsAt, r.EndsAt, r.CreatedAt).Scan(&r.ID)
	})
	return r, err
}

func scanRule(row scanner) (Rule, error) {
	var r Rule
	err := row.Scan(&r.ID, &r.AccessZoneID, &r.AttendeeTypeID, &r.AttendeeID, &r.StartsAt, &r.EndsAt, &r.CreatedAt)
	r.CreatedAt = r.CreatedAt.UTC()
	for _, t := range []**time.Time{&r.StartsAt, &r.EndsAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return r, err
}

// ListRules pages through the project's rules by id.
func (s *Store) ListRules(ctx context.Context, slug string, page domain.Page) (domain.List[Rule], error) {
	return list(ctx, s, slug, page, `SELECT id, zone_id, attendee_type_id, attendee_id, starts_at, ends_at, created_at FROM access_rules
WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, scanRule, func(r Rule) int64 { return r.ID })
}

// DeleteRule removes a rule.
func (s *Store) DeleteRule(ctx context.Context, slug string, id int64) error {
	if err := staff(ctx); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM access_rules WHERE project_id = $1 AND id = $2`, p.ID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domain.NotFound("access rule %d not found", id)
		}
		return nil
	})
}

type scanner = domain.Scanner

// list runs a project-scoped page query ($1 project, $2 after, $3 limit+1).
func list[T any](ctx context.Context, s *Store, slug string, page domain.Page, query string,
	scan func(scanner) (T, error), key func(T) int64) (domain.List[T], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[T]{}, err
	}
	return domain.QueryList(ctx, s.db, page, scan, key, query, p.ID, page.After, page.Limit+1)
}
