package attendees

import (
	"context"
	"net/mail"
	"strings"
	"time"

	"switchboard/domain"
)

// Attendee is a person registered to a project.
type Attendee struct {
	ID             int64     `json:"id"`
	ProjectID      int64     `json:"project_id"`
	FirstName      string    `json:"first_name"`
	LastName       string    `json:"last_name"`
	Email          string    `json:"email"`
	AttendeeTypeID *int64    `json:"attendee_type_id"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Migrations create the attendees table.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "attendees", Version: 1,
		Postgres: `CREATE TABLE attendees (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  email TEXT NOT NULL,
  attendee_type_id BIGINT,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX attendees_project ON attendees (project_id, id);`,
		SQLite: `CREATE TABLE attendees (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  email TEXT NOT NULL,
  attendee_type_id INTEGER,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE INDEX attendees_project ON attendees (project_id, id);`,
	}}
}

// Input is the writable part of an attendee. Nil fields are left alone by
// updates; creates require the names and the email.
type Input struct {
	FirstName      *string `json:"first_name"`
	LastName       *string `json:"last_name"`
	Email          *string `json:"email"`
	AttendeeTypeID *int64  `json:"attendee_type_id"`
}

func (in Input) validate(create bool) error {
	check := func(field string, v *string, max int) error {
		if v == nil {
			if create {
				return domain.Invalid(field, "is required")
			}
			return nil
		}
		if strings.TrimSpace(*v) == "" {
			return domain.Invalid(field, "must not be empty")
		}
		if len(*v) > max {
			return domain.Invalid(field, "must be at most %d characters", max)
		}
		return nil
	}
	if err := check("first_name", in.FirstName, 200); err != nil {
		return err
	}
	if err := check("last_name", in.LastName, 200); err != nil {
		return err
	}
	if err := check("email", in.Email, 320); err != nil {
		return err
	}
	if in.Email != nil {
		if a, err := mail.ParseAddress(*in.Email); err != nil || a.Address != *in.Email {
			return domain.Invalid("email", "is not an email address")
		}
	}
	if in.AttendeeTypeID != nil && *in.AttendeeTypeID < 1 {
		return domain.Invalid("attendee_type_id", "must be a positive integer")
	}
	return nil
}

// Store keeps attendees; every write also writes its event to the outbox in
// the same transaction.
type Store struct {
	db *domain.DB
}

// NewStore returns a Store on db.
func NewStore(db *domain.DB) *Store { return &Store{db: db} }

const cols = `id, project_id, first_name, last_name, email, attendee_type_id, created_at, updated_at`

func scan(row domain.Scanner) (Attendee, error) {
	var a Attendee
	err := row.Scan(&a.ID, &a.ProjectID, &a.FirstName, &a.LastName, &a.Email, &a.AttendeeTypeID, &a.CreatedAt, &a.UpdatedAt)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

// Create stores a new attendee of the project and emits AttendeeCreated.
func (s *Store) Create(ctx context.Context, slug string, in Input) (Attendee, error) {
	if err := in.validate(true); err != nil {
		return Attendee{}, err
	}
	var a Attendee
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Second)
		a = Attendee{ProjectID: p.ID, FirstName: *in.FirstName, LastName: *in.LastName, Email: *in.Email,
			AttendeeTypeID: in.AttendeeTypeID, CreatedAt: now, UpdatedAt: now}
		// InsertRow lets the row and its event reach PostgreSQL as one
		// statement: attendee creation is the busiest write (imports,
		// registration desks).
		a.ID, err = tx.InsertRow(ctx, "attendees", `INSERT INTO attendees (id, project_id, first_name, last_name, email, attendee_type_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			a.ProjectID, a.FirstName, a.LastName, a.Email, a.AttendeeTypeID, now, now)
		if err != nil {
			return err
		}
		return tx.Emit(scope(slug), AttendeeCreated{AttendeeID: a.ID, ProjectID: a.ProjectID, FirstName: a.FirstName,
			LastName: a.LastName, Email: a.Email, AttendeeTypeID: a.AttendeeTypeID, CreatedAt: domain.Timestamp(now)})
	})
	return a, err
}

// Get loads one attendee of the project.
func (s *Store) Get(ctx context.Context, slug string, id int64) (Attendee, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Attendee{}, err
	}
	return get(ctx, s.db, p.ID, id)
}

func get(ctx context.Context, q domain.Querier, projectID, id int64) (Attendee, error) {
	a, err := scan(q.QueryRowContext(ctx, `SELECT `+cols+` FROM attendees WHERE project_id = $1 AND id = $2`, projectID, id))
	if domain.IsNoRows(err) {
		return Attendee{}, domain.NotFound("attendee %d not found", id)
	}
	return a, err
}

// List pages through the project's attendees by id.
func (s *Store) List(ctx context.Context, slug string, page domain.Page) (domain.List[Attendee], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Attendee]{}, err
	}
	return domain.QueryList(ctx, s.db, page, scan, func(a Attendee) int64 { return a.ID },
		`SELECT `+cols+` FROM attendees WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, p.ID, page.After, page.Limit+1)
}

// Update changes the given fields and emits AttendeeUpdated with only the
// fields whose values changed (nothing changed: no write, no event).
func (s *Store) Update(ctx context.Context, slug string, id int64, in Input) (Attendee, error) {
	if err := in.validate(false); err != nil {
		return Attendee{}, err
	}
	var a Attendee
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if a, err = get(ctx, tx, p.ID, id); err != nil {
			return err
		}
		changes := map[string]any{}
		if in.FirstName != nil && *in.FirstName != a.FirstName {
			a.FirstName, changes["first_name"] = *in.FirstName, *in.FirstName
		}
		if in.LastName != nil && *in.LastName != a.LastName {
			a.LastName, changes["last_name"] = *in.LastName, *in.LastName
		}
		if in.Email != nil && *in.Email != a.Email {
			a.Email, changes["email"] = *in.Email, *in.Email
		}
		if in.AttendeeTypeID != nil && (a.AttendeeTypeID == nil || *in.AttendeeTypeID != *a.AttendeeTypeID) {
			a.AttendeeTypeID, changes["attendee_type_id"] = in.AttendeeTypeID, *in.AttendeeTypeID
		}
		if len(changes) == 0 {
			return nil
		}
		a.UpdatedAt = time.Now().UTC().Truncate(time.Second)
		if _, err := tx.ExecContext(ctx, `UPDATE attendees SET first_name = $1, last_name = $2, email = $3, attendee_type_id = $4, updated_at = $5
WHERE id = $6`, a.FirstName, a.LastName, a.Email, a.AttendeeTypeID, a.UpdatedAt, a.ID); err != nil {
			return err
		}
		return tx.Emit(scope(slug), AttendeeUpdated{AttendeeID: a.ID, ProjectID: a.ProjectID, Changes: changes,
			UpdatedAt: domain.Timestamp(a.UpdatedAt)})
	})
	return a, err
}

// Delete removes the attendee and emits AttendeeDeleted.
func (s *Store) Delete(ctx context.Context, slug string, id int64) error {
	return s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM attendees WHERE project_id = $1 AND id = $2`, p.ID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domain.NotFound("attendee %d not found", id)
		}
		return tx.Emit(scope(slug), AttendeeDeleted{AttendeeID: id, ProjectID: p.ID,
			DeletedAt: domain.Timestamp(time.Now().UTC().Truncate(time.Second))})
	})
}
