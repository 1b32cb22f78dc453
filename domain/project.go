package domain

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"
)

// Project is the tenant every event-management module hangs off; its slug
// names the dashboard channels.
type Project struct {
	ID        int64     `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Querier is what both *sql.DB and *sql.Tx offer for reads.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

var projectMigrations = []Migration{{
	Module: "projects", Version: 1,
	Postgres: `CREATE TABLE projects (
  id BIGSERIAL PRIMARY KEY,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);`,
	SQLite: `CREATE TABLE projects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);`,
}}

// CoreMigrations are the tables domain itself owns: the outbox, projects and
// the idempotency keys of the REST conventions.
func CoreMigrations() []Migration {
	out := append([]Migration{}, outboxMigrations...)
	out = append(out, projectMigrations...)
	return append(out, idempotencyMigrations...)
}

// ProjectBySlug loads a project, or a not_found error.
//
// Found projects are cached per DB: every project-scoped write starts with
// this lookup, and projects are never changed or deleted through the API,
// so the cached row stays right and each write saves a round trip. (A row
// deleted by hand behind the server's back makes later writes fail on
// their foreign key instead of answering not_found.)
func ProjectBySlug(ctx context.Context, q Querier, slug string) (Project, error) {
	var db *DB
	var tx *Tx
	switch v := q.(type) {
	case *DB:
		db = v
	case *Tx:
		db, tx = v.db, v
	}
	if db != nil {
		if p, ok := db.projects.Load(slug); ok {
			return p.(Project), nil
		}
	}
	var p Project
	err := q.QueryRowContext(ctx, `SELECT id, slug, name, created_at FROM projects WHERE slug = $1`, slug).
		Scan(&p.ID, &p.Slug, &p.Name, &p.CreatedAt)
	if IsNoRows(err) {
		return Project{}, NotFound("project %q not found", slug)
	}
	if err != nil {
		return Project{}, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	switch {
	case tx != nil:
		tx.projects = append(tx.projects, p)
	case db != nil:
		db.rememberProject(p)
	}
	return p, nil
}

// maxCachedProjects bounds the project cache.
const maxCachedProjects = 10000

func (db *DB) rememberProject(p Project) {
	if db.projectCount.Load() >= maxCachedProjects {
		return
	}
	if _, loaded := db.projects.LoadOrStore(p.Slug, p); !loaded {
		db.projectCount.Add(1)
	}
}

// ProjectAccess resolves {slug} for a route and checks the bearer may use it.
// Unknown projects are 404 only for callers allowed to know they exist.
func ProjectAccess(ctx context.Context, q Querier, slug string) (Project, error) {
	claims := ClaimsFrom(ctx)
	if claims == nil {
		return Project{}, ErrUnauthorized
	}
	if !claims.CanAccessProject(slug) {
		return Project{}, Forbidden("token may not access project %q", slug)
	}
	return ProjectBySlug(ctx, q, slug)
}

// ProjectRoutes registers the projects resource.
func ProjectRoutes(g *echo.Group, db *DB) {
	g.POST("/projects", func(c echo.Context) error {
		claims := ClaimsFrom(c.Request().Context())
		if claims == nil || !claims.Admin {
			return Forbidden("creating projects needs an admin token")
		}
		var in struct {
			Slug string `json:"slug"`
			Name string `json:"name"`
		}
		if err := Bind(c, &in); err != nil {
			return err
		}
		if !slugRE.MatchString(in.Slug) {
			return Invalid("slug", "must match %s", slugRE.String())
		}
		if in.Name == "" || len(in.Name) > 200 {
			return Invalid("name", "is required (at most 200 characters)")
		}
		p := Project{Slug: in.Slug, Name: in.Name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
		err := db.InTx(c.Request().Context(), func(tx *Tx) error {
			return tx.QueryRowContext(c.Request().Context(),
				`INSERT INTO projects (slug, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
				p.Slug, p.Name, p.CreatedAt).Scan(&p.ID)
		})
		if IsUniqueViolation(err) {
			return Conflict("project %q exists", in.Slug)
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, p)
	}, Op("v1.projects.store"))

	g.GET("/projects/:slug", func(c echo.Context) error {
		p, err := ProjectAccess(c.Request().Context(), db, c.Param("slug"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	}, Op("v1.projects.show"))
}
