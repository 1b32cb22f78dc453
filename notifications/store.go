package notifications

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"switchboard/domain"
)

// Actor is who caused a notification: a member, whose id is read as "43"
// or 43 and written as a number when numeric, like every member id (see
// domain.MemberID).
type Actor struct {
	ID   domain.MemberID `json:"id"`
	Name string          `json:"name"`
}

// Notification is one in-app notification of a member. CommunityMemberID
// is the recipient, a number when numeric (domain.MemberID), as the
// frontend's member ids are.
type Notification struct {
	ID                int64             `json:"id"`
	CommunityMemberID domain.MemberID   `json:"community_member_id"`
	Type              string            `json:"type"`
	Title             string            `json:"title"`
	Body              string            `json:"body"`
	Link              *string           `json:"link"`
	Actor             *Actor            `json:"actor"`
	ReadAt            *domain.Timestamp `json:"read_at"`
	CreatedAt         domain.Timestamp  `json:"created_at"`
}

// Migrations create the notifications table.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "notifications", Version: 1,
		Postgres: `CREATE TABLE notifications (
  id BIGSERIAL PRIMARY KEY,
  member_id TEXT NOT NULL,
  type TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  link TEXT,
  actor_id TEXT,
  actor_name TEXT,
  read_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notifications_member ON notifications (member_id, id);
CREATE INDEX notifications_unread ON notifications (member_id) WHERE read_at IS NULL;
CREATE TABLE notification_members (member_id TEXT PRIMARY KEY);`,
		SQLite: `CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  member_id TEXT NOT NULL,
  type TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  link TEXT,
  actor_id TEXT,
  actor_name TEXT,
  read_at TIMESTAMP,
  created_at TIMESTAMP NOT NULL
);
CREATE INDEX notifications_member ON notifications (member_id, id);
CREATE INDEX notifications_unread ON notifications (member_id) WHERE read_at IS NULL;
CREATE TABLE notification_members (member_id TEXT PRIMARY KEY);`,
	}}
}

// Input creates a notification.
type Input struct {
	Type  string  `json:"type"`
	Title string  `json:"title"`
	Body  string  `json:"body"`
	Link  *string `json:"link"`
	Actor *Actor  `json:"actor"`
}

func (in *Input) validate() error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"type", in.Type, 100}, {"title", in.Title, 500}, {"body", in.Body, 5000}} {
		if strings.TrimSpace(f.v) == "" {
			return domain.Invalid(f.name, "is required")
		}
		if len(f.v) > f.max {
			return domain.Invalid(f.name, "must be at most %d characters", f.max)
		}
	}
	if in.Link != nil && len(*in.Link) > 2000 {
		return domain.Invalid("link", "must be at most 2000 characters")
	}
	if in.Actor != nil {
		if in.Actor.ID == "" || len(in.Actor.ID) > 128 {
			return domain.Invalid("actor.id", "must be 1 to 128 characters")
		}
		if len(in.Actor.Name) > 200 {
			return domain.Invalid("actor.name", "must be at most 200 characters")
		}
	}
	return nil
}

// Store keeps notifications. Every write emits its events in the same
// transaction, with the unread count read in that transaction: the badge
// a client shows is always a count the database once had, never a sum the
// client kept.
type Store struct {
	db *domain.DB
}

// NewStore returns a Store on db.
func NewStore(db *domain.DB) *Store { return &Store{db: db} }

const cols = `id, member_id, type, title, body, link, actor_id, actor_name, read_at, created_at`

func scan(row interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	var member string
	var actorID, actorName sql.NullString
	var readAt sql.NullTime
	var created time.Time
	if err := row.Scan(&n.ID, &member, &n.Type, &n.Title, &n.Body, &n.Link, &actorID, &actorName, &readAt, &created); err != nil {
		return Notification{}, err
	}
	n.CommunityMemberID = domain.MemberID(member)
	n.CreatedAt = domain.Timestamp(created)
	if actorID.Valid {
		n.Actor = &Actor{ID: domain.MemberID(actorID.String), Name: actorName.String}
	}
	if readAt.Valid {
		t := domain.Timestamp(readAt.Time)
		n.ReadAt = &t
	}
	return n, nil
}

// lockMember serializes one member's notification writes: the upsert locks
// the member's row, so under PostgreSQL's READ COMMITTED the count read
// afterwards includes every concurrent write committed before, and two
// creates can never both announce the same count.
func lockMember(ctx context.Context, tx *domain.Tx, member string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO notification_members (member_id) VALUES ($1)
ON CONFLICT (member_id) DO UPDATE SET member_id = excluded.member_id`, member); err != nil {
		return fmt.Errorf("notifications: lock member: %w", err)
	}
	return nil
}

func unread(ctx context.Context, q domain.Querier, member string) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE member_id = $1 AND read_at IS NULL`, member).Scan(&n); err != nil {
		return 0, fmt.Errorf("notifications: count: %w", err)
	}
	return n, nil
}

// validMember reports whether id can name a member's channel.
func validMember(id string) bool {
	pc := domain.ParseChannel(domain.MemberChannel(domain.StreamNotifications, id))
	return pc.Kind == domain.KindMember && pc.Member == id
}

// Create stores a notification for member and sends newNotification and
// updateNewNotificationCount to the member. Only admin tokens (the app's
// backend) create notifications.
func (s *Store) Create(ctx context.Context, member string, in Input) (Notification, error) {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil {
		return Notification{}, domain.ErrUnauthorized
	}
	if !cl.Admin {
		return Notification{}, domain.Forbidden("only admin tokens may create notifications")
	}
	if !validMember(member) {
		return Notification{}, domain.NotFound("member %q not found", member)
	}
	if err := in.validate(); err != nil {
		return Notification{}, err
	}
	var out Notification
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		if err := lockMember(ctx, tx, member); err != nil {
			return err
		}
		var actorID, actorName *string
		if in.Actor != nil {
			id := string(in.Actor.ID)
			actorID, actorName = &id, &in.Actor.Name
		}
		t := time.Now().UTC().Truncate(time.Millisecond)
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO notifications (member_id, type, title, body, link, actor_id, actor_name, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, member, in.Type, in.Title, in.Body, in.Link, actorID, actorName, t).Scan(&id); err != nil {
			return fmt.Errorf("notifications: insert: %w", err)
		}
		out = Notification{ID: id, CommunityMemberID: domain.MemberID(member), Type: in.Type, Title: in.Title, Body: in.Body, Link: in.Link,
			Actor: in.Actor, CreatedAt: domain.Timestamp(t)}
		n, err := unread(ctx, tx, member)
		if err != nil {
			return err
		}
		return tx.Emit(scope(member), NewNotification{out}, UpdateNewNotificationCount{NewNotificationsCount: n})
	})
	return out, err
}

// List pages through the bearer's notifications, newest first.
func (s *Store) List(ctx context.Context, page domain.Page) (domain.List[Notification], error) {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil {
		return domain.List[Notification]{}, domain.ErrUnauthorized
	}
	before := page.After
	if before == 0 {
		before = 1<<63 - 1
	}
	l, err := domain.QueryList(ctx, s.db, page, func(r domain.Scanner) (Notification, error) { return scan(r) },
		func(n Notification) int64 { return n.ID },
		`SELECT `+cols+` FROM notifications WHERE member_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, cl.Subject, before, page.Limit+1)
	if err != nil {
		return domain.List[Notification]{}, fmt.Errorf("notifications: list: %w", err)
	}
	return l, nil
}

// Count returns the bearer's unread count.
func (s *Store) Count(ctx context.Context) (int, error) {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil {
		return 0, domain.ErrUnauthorized
	}
	return unread(ctx, s.db, cl.Subject)
}

// Read marks one of the bearer's notifications read and sends the new
// count. Reading a read notification changes nothing and sends nothing.
func (s *Store) Read(ctx context.Context, id int64) (Notification, error) {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil {
		return Notification{}, domain.ErrUnauthorized
	}
	var out Notification
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		if err := lockMember(ctx, tx, cl.Subject); err != nil {
			return err
		}
		n, err := scan(tx.QueryRowContext(ctx, `SELECT `+cols+` FROM notifications WHERE id = $1 AND member_id = $2`, id, cl.Subject))
		if domain.IsNoRows(err) {
			return domain.NotFound("notification %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("notifications: read: %w", err)
		}
		out = n
		if n.ReadAt != nil {
			return nil
		}
		t := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET read_at = $1 WHERE id = $2`, t, id); err != nil {
			return fmt.Errorf("notifications: read: %w", err)
		}
		ts := domain.Timestamp(t)
		out.ReadAt = &ts
		count, err := unread(ctx, tx, cl.Subject)
		if err != nil {
			return err
		}
		return tx.Emit(scope(cl.Subject), UpdateNewNotificationCount{NewNotificationsCount: count})
	})
	return out, err
}

// ReadAll marks every notification of the bearer read and sends
// resetNewNotificationCount (also when nothing was unread: a client whose
// badge drifted is set right).
func (s *Store) ReadAll(ctx context.Context) error {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil {
		return domain.ErrUnauthorized
	}
	return s.db.InTx(ctx, func(tx *domain.Tx) error {
		if err := lockMember(ctx, tx, cl.Subject); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET read_at = $1 WHERE member_id = $2 AND read_at IS NULL`,
			time.Now().UTC().Truncate(time.Millisecond), cl.Subject); err != nil {
			return fmt.Errorf("notifications: read all: %w", err)
		}
		return tx.Emit(scope(cl.Subject), ResetNewNotificationCount{NewNotificationsCount: 0})
	})
}
