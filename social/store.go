package social

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"switchboard/domain"
)

// Stream is a feed of posts inside a project (e.g. "Main stage").
type Stream struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Post is one message of a stream. Hidden posts are kept for the record
// but only staff see them in lists.
type Post struct {
	ID        int64      `json:"id"`
	StreamID  int64      `json:"stream_id"`
	Content   string     `json:"content"`
	Author    Author     `json:"author"`
	CreatedAt time.Time  `json:"created_at"`
	Hidden    bool       `json:"hidden"`
	HiddenAt  *time.Time `json:"hidden_at,omitempty"`
}

// MaxContent bounds a post, in characters.
const MaxContent = 5000

// Migrations create streams and posts.
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "social", Version: 1,
		Postgres: `CREATE TABLE social_streams (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX social_streams_project ON social_streams (project_id, id);
CREATE TABLE social_posts (
  id BIGSERIAL PRIMARY KEY,
  stream_id BIGINT NOT NULL REFERENCES social_streams(id) ON DELETE CASCADE,
  content TEXT NOT NULL,
  author_id TEXT NOT NULL,
  author_name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  hidden_at TIMESTAMPTZ,
  hidden_by TEXT
);
CREATE INDEX social_posts_stream ON social_posts (stream_id, id DESC);`,
		SQLite: `CREATE TABLE social_streams (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE INDEX social_streams_project ON social_streams (project_id, id);
CREATE TABLE social_posts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_id INTEGER NOT NULL REFERENCES social_streams(id) ON DELETE CASCADE,
  content TEXT NOT NULL,
  author_id TEXT NOT NULL,
  author_name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  hidden_at TIMESTAMP,
  hidden_by TEXT
);
CREATE INDEX social_posts_stream ON social_posts (stream_id, id DESC);`,
	}}
}

// StreamInput creates a stream.
type StreamInput struct {
	Name string `json:"name"`
}

// PostInput publishes a post; the author is never taken from the body.
type PostInput struct {
	Content string `json:"content"`
}

// Store keeps streams and posts; post writes also write their event to the
// outbox in the same transaction.
type Store struct {
	db *domain.DB
}

// NewStore returns a Store on db.
func NewStore(db *domain.DB) *Store { return &Store{db: db} }

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// CreateStream stores a stream; only staff (admin) create streams.
func (s *Store) CreateStream(ctx context.Context, slug string, in StreamInput) (Stream, error) {
	if cl := domain.ClaimsFrom(ctx); cl == nil || !cl.Admin {
		return Stream{}, domain.Forbidden("creating streams needs a staff (admin) token")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return Stream{}, domain.Invalid("name", "is required (at most 200 characters)")
	}
	st := Stream{Name: in.Name, CreatedAt: now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		st.ProjectID = p.ID
		return tx.QueryRowContext(ctx, `INSERT INTO social_streams (project_id, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
			st.ProjectID, st.Name, st.CreatedAt).Scan(&st.ID)
	})
	return st, err
}

func getStream(ctx context.Context, q domain.Querier, projectID, id int64) (Stream, error) {
	var st Stream
	err := q.QueryRowContext(ctx, `SELECT id, project_id, name, created_at FROM social_streams WHERE project_id = $1 AND id = $2`,
		projectID, id).Scan(&st.ID, &st.ProjectID, &st.Name, &st.CreatedAt)
	if domain.IsNoRows(err) {
		return Stream{}, domain.NotFound("stream %d not found", id)
	}
	st.CreatedAt = st.CreatedAt.UTC()
	return st, err
}

// GetStream loads one stream of the project.
func (s *Store) GetStream(ctx context.Context, slug string, id int64) (Stream, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Stream{}, err
	}
	return getStream(ctx, s.db, p.ID, id)
}

// ListStreams pages through the project's streams by id.
func (s *Store) ListStreams(ctx context.Context, slug string, page domain.Page) (domain.List[Stream], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Stream]{}, err
	}
	return domain.QueryList(ctx, s.db, page, func(r domain.Scanner) (Stream, error) {
		var st Stream
		err := r.Scan(&st.ID, &st.ProjectID, &st.Name, &st.CreatedAt)
		st.CreatedAt = st.CreatedAt.UTC()
		return st, err
	}, func(st Stream) int64 { return st.ID }, `SELECT id, project_id, name, created_at FROM social_streams
WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, p.ID, page.After, page.Limit+1)
}

// CreatePost publishes the bearer's post and emits PostCreated.
func (s *Store) CreatePost(ctx context.Context, slug string, streamID int64, in PostInput) (Post, error) {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil {
		return Post{}, domain.ErrUnauthorized
	}
	if strings.TrimSpace(in.Content) == "" || utf8.RuneCountInString(in.Content) > MaxContent {
		return Post{}, domain.Invalid("content", "is required (at most %d characters)", MaxContent)
	}
	post := Post{StreamID: streamID, Content: in.Content, Author: Author{ID: AuthorID(cl.Subject), Name: cl.Name}, CreatedAt: now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := getStream(ctx, tx, p.ID, streamID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO social_posts (stream_id, content, author_id, author_name, created_at)
VALUES ($1, $2, $3, $4, $5) RETURNING id`, streamID, post.Content, string(post.Author.ID), post.Author.Name, post.CreatedAt).Scan(&post.ID); err != nil {
			return err
		}
		return tx.Emit(scope(slug), PostCreated{PostID: post.ID, StreamID: streamID, Content: post.Content,
			Author: post.Author, CreatedAt: domain.Timestamp(post.CreatedAt)})
	})
	return post, err
}

const postCols = `id, stream_id, content, author_id, author_name, created_at, hidden_at`

func scanPost(row interface{ Scan(...any) error }) (Post, error) {
	var p Post
	var author string
	if err := row.Scan(&p.ID, &p.StreamID, &p.Content, &author, &p.Author.Name, &p.CreatedAt, &p.HiddenAt); err != nil {
		return Post{}, err
	}
	p.Author.ID = AuthorID(author)
	p.CreatedAt = p.CreatedAt.UTC()
	if p.HiddenAt != nil {
		t := p.HiddenAt.UTC()
		p.HiddenAt, p.Hidden = &t, true
	}
	return p, nil
}

// Hide hides a post (staff only) and emits PostHidden. Hiding a hidden post
// changes nothing and emits nothing.
func (s *Store) Hide(ctx context.Context, slug string, streamID, postID int64) (Post, error) {
	cl := domain.ClaimsFrom(ctx)
	if cl == nil || !cl.Admin {
		return Post{}, domain.Forbidden("hiding posts needs a staff (admin) token")
	}
	var post Post
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := getStream(ctx, tx, p.ID, streamID); err != nil {
			return err
		}
		post, err = scanPost(tx.QueryRowContext(ctx, `SELECT `+postCols+` FROM social_posts WHERE stream_id = $1 AND id = $2`, streamID, postID))
		if domain.IsNoRows(err) {
			return domain.NotFound("post %d not found", postID)
		}
		if err != nil || post.Hidden {
			return err
		}
		t := now()
		post.Hidden, post.HiddenAt = true, &t
		if _, err := tx.ExecContext(ctx, `UPDATE social_posts SET hidden_at = $1, hidden_by = $2 WHERE id = $3`, t, cl.Subject, postID); err != nil {
			return err
		}
		return tx.Emit(scope(slug), PostHidden{PostID: postID, StreamID: streamID,
			HiddenBy: Author{ID: AuthorID(cl.Subject), Name: cl.Name}, HiddenAt: domain.Timestamp(t)})
	})
	return post, err
}

// ListPosts pages through a stream's posts, newest first. Hidden posts are
// listed only for staff, who moderate them.
func (s *Store) ListPosts(ctx context.Context, slug string, streamID int64, page domain.Page) (domain.List[Post], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Post]{}, err
	}
	if _, err := getStream(ctx, s.db, p.ID, streamID); err != nil {
		return domain.List[Post]{}, err
	}
	before := page.After
	if before == 0 {
		before = 1<<63 - 1
	}
	staff := domain.ClaimsFrom(ctx).Admin
	return domain.QueryList(ctx, s.db, page, func(r domain.Scanner) (Post, error) { return scanPost(r) },
		func(p Post) int64 { return p.ID }, `SELECT `+postCols+` FROM social_posts
WHERE stream_id = $1 AND id < $2 AND (hidden_at IS NULL OR $3) ORDER BY id DESC LIMIT $4`, streamID, before, staff, page.Limit+1)
}
