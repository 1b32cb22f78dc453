package forms

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"switchboard/domain"
)

// Form is a questionnaire of a project.
type Form struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project_id"`
	Title     string    `json:"title"`
	Fields    []Field   `json:"fields"`
	CreatedAt time.Time `json:"created_at"`
}

// Response is one attendee's answers to a form.
type Response struct {
	ID          int64           `json:"id"`
	FormID      int64           `json:"form_id"`
	AttendeeID  int64           `json:"attendee_id"`
	Answers     json.RawMessage `json:"answers"`
	SubmittedAt time.Time       `json:"submitted_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// Migrations create forms and responses. Field definitions and answers are
// JSON text: they are read and written whole, never queried inside.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "forms", Version: 1,
		Postgres: `CREATE TABLE forms (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  fields TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX forms_project ON forms (project_id, id);
CREATE TABLE form_responses (
  id BIGSERIAL PRIMARY KEY,
  form_id BIGINT NOT NULL REFERENCES forms(id) ON DELETE CASCADE,
  attendee_id BIGINT NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  answers TEXT NOT NULL,
  submitted_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX form_responses_form ON form_responses (form_id, id);`,
		SQLite: `CREATE TABLE forms (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  fields TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE INDEX forms_project ON forms (project_id, id);
CREATE TABLE form_responses (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  form_id INTEGER NOT NULL REFERENCES forms(id) ON DELETE CASCADE,
  attendee_id INTEGER NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  answers TEXT NOT NULL,
  submitted_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);
CREATE INDEX form_responses_form ON form_responses (form_id, id);`,
	}}
}

// FormInput creates a form.
type FormInput struct {
	Title  string  `json:"title"`
	Fields []Field `json:"fields"`
}

// ResponseInput submits (attendee_id + answers) or replaces (answers) a
// response.
type ResponseInput struct {
	AttendeeID int64           `json:"attendee_id"`
	Answers    json.RawMessage `json:"answers"`
}

// Store keeps forms and responses; every response write also writes its
// event to the outbox in the same transaction.
type Store struct {
	db *domain.DB
	// attendees answers for the attendees that responses name.
	attendees domain.AttendeeLookup
}

// NewStore returns a Store on db that asks attendees about attendees.
func NewStore(db *domain.DB, attendees domain.AttendeeLookup) *Store {
	return &Store{db: db, attendees: attendees}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// CreateForm stores a form after checking its field definitions.
func (s *Store) CreateForm(ctx context.Context, slug string, in FormInput) (Form, error) {
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" || len(in.Title) > 200 {
		return Form{}, domain.Invalid("title", "is required (at most 200 characters)")
	}
	if err := validateFields(in.Fields); err != nil {
		return Form{}, err
	}
	fields, err := json.Marshal(in.Fields)
	if err != nil {
		return Form{}, fmt.Errorf("encode fields: %w", err)
	}
	f := Form{Title: in.Title, Fields: in.Fields, CreatedAt: now()}
	err = s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		f.ProjectID = p.ID
		return tx.QueryRowContext(ctx, `INSERT INTO forms (project_id, title, fields, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			f.ProjectID, f.Title, string(fields), f.CreatedAt).Scan(&f.ID)
	})
	return f, err
}

const formCols = `id, project_id, title, fields, created_at`

func scanForm(row domain.Scanner) (Form, error) {
	var f Form
	var fields string
	if err := row.Scan(&f.ID, &f.ProjectID, &f.Title, &fields, &f.CreatedAt); err != nil {
		return Form{}, err
	}
	f.CreatedAt = f.CreatedAt.UTC()
	if err := json.Unmarshal([]byte(fields), &f.Fields); err != nil {
		return Form{}, fmt.Errorf("form %d: decode fields: %w", f.ID, err)
	}
	return f, nil
}

// GetForm loads one form of the project.
func (s *Store) GetForm(ctx context.Context, slug string, id int64) (Form, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Form{}, err
	}
	return getForm(ctx, s.db, p.ID, id)
}

func getForm(ctx context.Context, q domain.Querier, projectID, id int64) (Form, error) {
	f, err := scanForm(q.QueryRowContext(ctx, `SELECT `+formCols+` FROM forms WHERE project_id = $1 AND id = $2`, projectID, id))
	if domain.IsNoRows(err) {
		return Form{}, domain.NotFound("form %d not found", id)
	}
	return f, err
}

// ListForms pages through the project's forms by id.
func (s *Store) ListForms(ctx context.Context, slug string, page domain.Page) (domain.List[Form], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Form]{}, err
	}
	return domain.QueryList(ctx, s.db, page, scanForm, func(f Form) int64 { return f.ID },
		`SELECT `+formCols+` FROM forms WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, p.ID, page.After, page.Limit+1)
}

// Submit validates answers against the form and stores a response with
// FormResponseCreated.
func (s *Store) Submit(ctx context.Context, slug string, formID int64, in ResponseInput) (Response, error) {
	if in.AttendeeID < 1 {
		return Response{}, domain.Invalid("attendee_id", "is required (a positive integer)")
	}
	var r Response
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		f, err := getForm(ctx, tx, p.ID, formID)
		if err != nil {
			return err
		}
		answers, err := validateAnswers(f.Fields, in.Answers)
		if err != nil {
			return err
		}
		if _, err := s.attendees.FindAttendee(ctx, tx, p.ID, in.AttendeeID); err != nil {
			return err
		}
		t := now()
		r = Response{FormID: formID, AttendeeID: in.AttendeeID, Answers: answers, SubmittedAt: t, UpdatedAt: t}
		if err := tx.QueryRowContext(ctx, `INSERT INTO form_responses (form_id, attendee_id, answers, submitted_at, updated_at)
VALUES ($1, $2, $3, $4, $4) RETURNING id`, formID, r.AttendeeID, string(answers), t).Scan(&r.ID); err != nil {
			return err
		}
		return tx.Emit(scope(slug), FormResponseCreated{FormID: formID, ResponseID: r.ID, AttendeeID: r.AttendeeID,
			Answers: answers, SubmittedAt: domain.Timestamp(t)})
	})
	return r, err
}

// Update replaces a response's answers (validated whole, as on submit) and
// emits FormResponseUpdated. The attendee of a response never changes.
func (s *Store) Update(ctx context.Context, slug string, formID, responseID int64, in ResponseInput) (Response, error) {
	var r Response
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		f, err := getForm(ctx, tx, p.ID, formID)
		if err != nil {
			return err
		}
		if r, err = getResponse(ctx, tx, formID, responseID); err != nil {
			return err
		}
		answers, err := validateAnswers(f.Fields, in.Answers)
		if err != nil {
			return err
		}
		r.Answers, r.UpdatedAt = answers, now()
		if _, err := tx.ExecContext(ctx, `UPDATE form_responses SET answers = $1, updated_at = $2 WHERE id = $3`,
			string(answers), r.UpdatedAt, r.ID); err != nil {
			return err
		}
		return tx.Emit(scope(slug), FormResponseUpdated{FormID: formID, ResponseID: r.ID, AttendeeID: r.AttendeeID,
			Answers: answers, SubmittedAt: domain.Timestamp(r.SubmittedAt), UpdatedAt: domain.Timestamp(r.UpdatedAt)})
	})
	return r, err
}

const responseCols = `id, form_id, attendee_id, answers, submitted_at, updated_at`

func scanResponse(row domain.Scanner) (Response, error) {
	var r Response
	var answers string
	if err := row.Scan(&r.ID, &r.FormID, &r.AttendeeID, &answers, &r.SubmittedAt, &r.UpdatedAt); err != nil {
		return Response{}, err
	}
	r.Answers = json.RawMessage(answers)
	r.SubmittedAt, r.UpdatedAt = r.SubmittedAt.UTC(), r.UpdatedAt.UTC()
	return r, nil
}

func getResponse(ctx context.Context, q domain.Querier, formID, id int64) (Response, error) {
	r, err := scanResponse(q.QueryRowContext(ctx, `SELECT `+responseCols+` FROM form_responses WHERE form_id = $1 AND id = $2`, formID, id))
	if domain.IsNoRows(err) {
		return Response{}, domain.NotFound("response %d not found", id)
	}
	return r, err
}

// GetResponse loads one response of a form.
func (s *Store) GetResponse(ctx context.Context, slug string, formID, id int64) (Response, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Response{}, err
	}
	if _, err := getForm(ctx, s.db, p.ID, formID); err != nil {
		return Response{}, err
	}
	return getResponse(ctx, s.db, formID, id)
}

// ListResponses pages through a form's responses by id.
func (s *Store) ListResponses(ctx context.Context, slug string, formID int64, page domain.Page) (domain.List[Response], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Response]{}, err
	}
	if _, err := getForm(ctx, s.db, p.ID, formID); err != nil {
		return domain.List[Response]{}, err
	}
	return domain.QueryList(ctx, s.db, page, scanResponse, func(r Response) int64 { return r.ID },
		`SELECT `+responseCols+` FROM form_responses WHERE form_id = $1 AND id > $2 ORDER BY id LIMIT $3`, formID, page.After, page.Limit+1)
}
