package domain_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// Project lookups are cached per DB once the reading transaction commits:
// a project seen only by a transaction that rolled back is not remembered.
func TestProjectBySlugCache(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		ctx := context.Background()
		create := func(tx *domain.Tx, slug string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO projects (slug, name, created_at) VALUES ($1, $2, $3)`,
				slug, "Name of "+slug, time.Now().UTC())
			return err
		}
		notFound := func(err error) bool {
			var de *domain.Error
			return errors.As(err, &de) && de.Status == http.StatusNotFound
		}
		errRollback := errors.New("roll back")
		tests := []struct {
			name       string
			slug       string
			commit     bool
			wantCached bool // still found after the row is deleted behind the cache
		}{
			{"committed lookup is cached", "kept", true, true},
			{"rolled-back lookup is not", "gone", false, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := db.InTx(ctx, func(tx *domain.Tx) error {
					if err := create(tx, tt.slug); err != nil {
						return err
					}
					p, err := domain.ProjectBySlug(ctx, tx, tt.slug)
					if err != nil {
						return err
					}
					if p.Slug != tt.slug || p.Name != "Name of "+tt.slug || p.ID == 0 {
						t.Errorf("project in tx = %+v", p)
					}
					if !tt.commit {
						return errRollback
					}
					return nil
				})
				if tt.commit && err != nil || !tt.commit && !errors.Is(err, errRollback) {
					t.Fatalf("InTx: %v", err)
				}
				// Remove the row directly: only the cache can still answer.
				if _, err := db.ExecContext(ctx, `DELETE FROM projects WHERE slug = $1`, tt.slug); err != nil {
					t.Fatal(err)
				}
				p, err := domain.ProjectBySlug(ctx, db, tt.slug)
				switch {
				case tt.wantCached && (err != nil || p.Slug != tt.slug):
					t.Fatalf("after commit: %+v, %v; want the cached project", p, err)
				case !tt.wantCached && !notFound(err):
					t.Fatalf("after rollback: %+v, %v; want not_found", p, err)
				}
			})
		}
	}, domain.CoreMigrations())
}
