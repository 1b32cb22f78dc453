package access

import (
	"context"
	"time"

	"switchboard/domain"
)

// ScanInput is what a kiosk sends when a credential is presented.
type ScanInput struct {
	CredentialValue string `json:"credential_value"`
	AccessPointID   int64  `json:"access_point_id"`
	Direction       string `json:"direction"`
}

func (in ScanInput) validate() error {
	if in.CredentialValue == "" || len(in.CredentialValue) > 255 {
		return domain.Invalid("credential_value", "is required (at most 255 characters)")
	}
	if in.AccessPointID < 1 {
		return domain.Invalid("access_point_id", "is required (a positive integer)")
	}
	if in.Direction != DirectionIn && in.Direction != DirectionOut {
		return domain.Invalid("direction", `must be "in" or "out"`)
	}
	return nil
}

// ScanAttendee is who the credential belongs to, for the kiosk's display.
type ScanAttendee struct {
	ID             int64  `json:"id"`
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name"`
	AttendeeTypeID *int64 `json:"attendee_type_id"`
}

// Scan is a decided scan: the kiosk's answer and the audit log row.
// Reason is null when granted; Attendee is null when the credential is
// unknown.
type Scan struct {
	ID              int64         `json:"id"`
	Granted         bool          `json:"granted"`
	Reason          *string       `json:"reason"`
	Attendee        *ScanAttendee `json:"attendee"`
	CredentialValue string        `json:"credential_value"`
	CredentialID    *int64        `json:"credential_id"`
	AccessPointID   int64         `json:"access_point_id"`
	AccessZoneID    int64         `json:"access_zone_id"`
	Direction       string        `json:"direction"`
	Timestamp       time.Time     `json:"timestamp"`
}

// Scan decides a scan, stores it and emits AccessGranted or AccessDenied in
// one transaction. A denial is a fact to record, not an error: it is stored
// and announced like a grant. Only a malformed request or an unknown access
// point is an error, and then nothing is written.
func (s *Store) Scan(ctx context.Context, slug string, in ScanInput) (Scan, error) {
	if err := in.validate(); err != nil {
		return Scan{}, err
	}
	sc := Scan{CredentialValue: in.CredentialValue, AccessPointID: in.AccessPointID, Direction: in.Direction, Timestamp: s.now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		pt, err := getPoint(ctx, tx, p.ID, in.AccessPointID)
		if err != nil {
			return err
		}
		sc.AccessZoneID = pt.AccessZoneID

		var cred Credential
		found := true
		cred, err = scanCredential(tx.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM access_credentials WHERE project_id = $1 AND value = $2`,
			p.ID, in.CredentialValue))
		if domain.IsNoRows(err) {
			found = false
		} else if err != nil {
			return err
		}
		var windows []window
		if found {
			sc.CredentialID = &cred.ID
			a, err := s.attendees.FindAttendee(ctx, tx, p.ID, cred.AttendeeID)
			if err != nil {
				return err
			}
			sc.Attendee = &ScanAttendee{ID: a.ID, FirstName: a.FirstName, LastName: a.LastName, AttendeeTypeID: a.AttendeeTypeID}
			if windows, err = zoneWindows(ctx, tx, pt.AccessZoneID, a); err != nil {
				return err
			}
		}
		reason := decide(found, cred.Revoked, in.Direction, windows, sc.Timestamp)
		sc.Granted = reason == ""
		if !sc.Granted {
			sc.Reason = &reason
		}
		var attendeeID *int64
		if sc.Attendee != nil {
			attendeeID = &sc.Attendee.ID
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO access_scans
(project_id, access_point_id, access_zone_id, credential_value, credential_id, attendee_id, direction, granted, reason, scanned_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`, p.ID, sc.AccessPointID, sc.AccessZoneID, sc.CredentialValue,
			sc.CredentialID, attendeeID, sc.Direction, sc.Granted, sc.Reason, sc.Timestamp).Scan(&sc.ID); err != nil {
			return err
		}
		if sc.Granted {
			return tx.Emit(scope(slug), AccessGranted{AttendeeID: *attendeeID, AccessPointID: sc.AccessPointID,
				AccessZoneID: sc.AccessZoneID, CredentialID: cred.ID, Direction: sc.Direction, Timestamp: domain.Timestamp(sc.Timestamp)})
		}
		return tx.Emit(scope(slug), AccessDenied{CredentialValue: sc.CredentialValue, AccessPointID: sc.AccessPointID,
			Reason: reason, Timestamp: domain.Timestamp(sc.Timestamp)})
	})
	return sc, err
}

// zoneWindows returns the windows of the zone's rules that name a or its
// type. Times are compared in Go, not SQL: SQLite stores them as text.
func zoneWindows(ctx context.Context, tx *domain.Tx, zoneID int64, a domain.AttendeeRef) ([]window, error) {
	var typeID int64 = -1
	if a.AttendeeTypeID != nil {
		typeID = *a.AttendeeTypeID
	}
	rows, err := tx.QueryContext(ctx, `SELECT starts_at, ends_at FROM access_rules
WHERE zone_id = $1 AND (attendee_id = $2 OR attendee_type_id = $3)`, zoneID, a.ID, typeID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []window
	for rows.Next() {
		var w window
		if err := rows.Scan(&w.StartsAt, &w.EndsAt); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// ListScans pages through the project's scan log, newest first.
func (s *Store) ListScans(ctx context.Context, slug string, page domain.Page) (domain.List[Scan], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Scan]{}, err
	}
	before := page.After
	if before == 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT s.id, s.granted, s.reason, s.credential_value, s.credential_id, s.access_point_id,
  s.access_zone_id, s.direction, s.scanned_at, a.id, a.first_name, a.last_name, a.attendee_type_id
FROM access_scans s LEFT JOIN attendees a ON a.id = s.attendee_id
WHERE s.project_id = $1 AND s.id < $2 ORDER BY s.id DESC LIMIT $3`, p.ID, before, page.Limit+1)
	if err != nil {
		return domain.List[Scan]{}, err
	}
	defer rows.Close()
	var out []Scan
	for rows.Next() {
		var sc Scan
		var aid *int64
		var first, last *string
		var typ *int64
		if err := rows.Scan(&sc.ID, &sc.Granted, &sc.Reason, &sc.CredentialValue, &sc.CredentialID, &sc.AccessPointID,
			&sc.AccessZoneID, &sc.Direction, &sc.Timestamp, &aid, &first, &last, &typ); err != nil {
			return domain.List[Scan]{}, err
		}
		sc.Timestamp = sc.Timestamp.UTC()
		if aid != nil {
			sc.Attendee = &ScanAttendee{ID: *aid, FirstName: deref(first), LastName: deref(last), AttendeeTypeID: typ}
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return domain.List[Scan]{}, err
	}
	return domain.NewList(out, page.Limit, func(sc Scan) int64 { return sc.ID }), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
