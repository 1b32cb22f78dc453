package games

import (
	"context"
	"regexp"
	"strings"
	"time"

	"switchboard/domain"
)

// Game is a points competition inside a project.
type Game struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Award is one grant of points (negative points are a correction).
type Award struct {
	ID          int64     `json:"id"`
	GameID      int64     `json:"game_id"`
	AttendeeID  int64     `json:"attendee_id"`
	Points      int64     `json:"points"`
	Reason      string    `json:"reason"`
	TotalPoints int64     `json:"total_points"`
	AwardedAt   time.Time `json:"awarded_at"`
}

// Standing is one leaderboard row. Rank is the position (1-based); equal
// totals are ordered by attendee id so pages are stable.
type Standing struct {
	Rank        int64  `json:"rank"`
	AttendeeID  int64  `json:"attendee_id"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	TotalPoints int64  `json:"total_points"`
}

// Migrations create games, awards (the history) and scores (one running
// total per game and attendee, the row concurrent awards serialize on).
func Migrations() []domain.Migration {
	return []domain.Migration{{
		Module: "games", Version: 1,
		Postgres: `CREATE TABLE games (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX games_project ON games (project_id, id);
CREATE TABLE game_awards (
  id BIGSERIAL PRIMARY KEY,
  game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
  attendee_id BIGINT NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  points BIGINT NOT NULL,
  reason TEXT NOT NULL,
  total_points BIGINT NOT NULL,
  awarded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX game_awards_game ON game_awards (game_id, id);
CREATE TABLE game_scores (
  game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
  attendee_id BIGINT NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  total BIGINT NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (game_id, attendee_id)
);
CREATE INDEX game_scores_board ON game_scores (game_id, total DESC, attendee_id);`,
		SQLite: `CREATE TABLE games (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE INDEX games_project ON games (project_id, id);
CREATE TABLE game_awards (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  game_id INTEGER NOT NULL REFERENCES games(id) ON DELETE CASCADE,
  attendee_id INTEGER NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  points INTEGER NOT NULL,
  reason TEXT NOT NULL,
  total_points INTEGER NOT NULL,
  awarded_at TIMESTAMP NOT NULL
);
CREATE INDEX game_awards_game ON game_awards (game_id, id);
CREATE TABLE game_scores (
  game_id INTEGER NOT NULL REFERENCES games(id) ON DELETE CASCADE,
  attendee_id INTEGER NOT NULL REFERENCES attendees(id) ON DELETE CASCADE,
  total INTEGER NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  PRIMARY KEY (game_id, attendee_id)
);
CREATE INDEX game_scores_board ON game_scores (game_id, total DESC, attendee_id);`,
	}}
}

// GameInput creates a game.
type GameInput struct {
	Name string `json:"name"`
}

// AwardInput awards points.
type AwardInput struct {
	AttendeeID int64  `json:"attendee_id"`
	Points     int64  `json:"points"`
	Reason     string `json:"reason"`
}

// MaxPoints bounds one award so totals cannot overflow by accident.
const MaxPoints = 1_000_000

var reasonRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)

func (in AwardInput) validate() error {
	if in.AttendeeID < 1 {
		return domain.Invalid("attendee_id", "is required (a positive integer)")
	}
	if in.Points == 0 || in.Points > MaxPoints || in.Points < -MaxPoints {
		return domain.Invalid("points", "must be a non-zero integer from -%d to %d", MaxPoints, MaxPoints)
	}
	if !reasonRE.MatchString(in.Reason) {
		return domain.Invalid("reason", "is required: 1-100 letters, digits or _.:- (e.g. session_attendance)")
	}
	return nil
}

// Store keeps games and scores; every award writes its row, the new total
// and PointsAwarded in one transaction.
type Store struct {
	db *domain.DB
	// attendees answers for the attendees that awards name.
	attendees domain.AttendeeLookup
}

// NewStore returns a Store on db that asks attendees about attendees.
func NewStore(db *domain.DB, attendees domain.AttendeeLookup) *Store {
	return &Store{db: db, attendees: attendees}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// CreateGame stores a game.
func (s *Store) CreateGame(ctx context.Context, slug string, in GameInput) (Game, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return Game{}, domain.Invalid("name", "is required (at most 200 characters)")
	}
	g := Game{Name: in.Name, CreatedAt: now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		g.ProjectID = p.ID
		return tx.QueryRowContext(ctx, `INSERT INTO games (project_id, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
			g.ProjectID, g.Name, g.CreatedAt).Scan(&g.ID)
	})
	return g, err
}

// GetGame loads one game of the project.
func (s *Store) GetGame(ctx context.Context, slug string, id int64) (Game, error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return Game{}, err
	}
	return getGame(ctx, s.db, p.ID, id)
}

func getGame(ctx context.Context, q domain.Querier, projectID, id int64) (Game, error) {
	var g Game
	err := q.QueryRowContext(ctx, `SELECT id, project_id, name, created_at FROM games WHERE project_id = $1 AND id = $2`,
		projectID, id).Scan(&g.ID, &g.ProjectID, &g.Name, &g.CreatedAt)
	if domain.IsNoRows(err) {
		return Game{}, domain.NotFound("game %d not found", id)
	}
	g.CreatedAt = g.CreatedAt.UTC()
	return g, err
}

// ListGames pages through the project's games by id.
func (s *Store) ListGames(ctx context.Context, slug string, page domain.Page) (domain.List[Game], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Game]{}, err
	}
	return domain.QueryList(ctx, s.db, page, func(r domain.Scanner) (Game, error) {
		var g Game
		err := r.Scan(&g.ID, &g.ProjectID, &g.Name, &g.CreatedAt)
		g.CreatedAt = g.CreatedAt.UTC()
		return g, err
	}, func(g Game) int64 { return g.ID }, `SELECT id, project_id, name, created_at FROM games
WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, p.ID, page.After, page.Limit+1)
}

// Award grants points and emits PointsAwarded with the new running total.
// The total comes from one atomic upsert on the (game, attendee) score row:
// PostgreSQL serializes concurrent upserts of that row on its lock and SQLite
// has a single writer, so no award can read a stale total and lose an update.
func (s *Store) Award(ctx context.Context, slug string, gameID int64, in AwardInput) (Award, error) {
	if err := in.validate(); err != nil {
		return Award{}, err
	}
	a := Award{GameID: gameID, AttendeeID: in.AttendeeID, Points: in.Points, Reason: in.Reason, AwardedAt: now()}
	err := s.db.InTx(ctx, func(tx *domain.Tx) error {
		p, err := domain.ProjectAccess(ctx, tx, slug)
		if err != nil {
			return err
		}
		if _, err := getGame(ctx, tx, p.ID, gameID); err != nil {
			return err
		}
		if _, err := s.attendees.FindAttendee(ctx, tx, p.ID, in.AttendeeID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO game_scores (game_id, attendee_id, total, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (game_id, attendee_id) DO UPDATE SET total = game_scores.total + excluded.total, updated_at = excluded.updated_at
RETURNING total`, gameID, in.AttendeeID, in.Points, a.AwardedAt).Scan(&a.TotalPoints); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO game_awards (game_id, attendee_id, points, reason, total_points, awarded_at)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, gameID, a.AttendeeID, a.Points, a.Reason, a.TotalPoints, a.AwardedAt).Scan(&a.ID); err != nil {
			return err
		}
		return tx.Emit(scope(slug), PointsAwarded{GameID: gameID, AttendeeID: a.AttendeeID, Points: a.Points,
			Reason: a.Reason, TotalPoints: a.TotalPoints, AwardedAt: domain.Timestamp(a.AwardedAt)})
	})
	return a, err
}

// ListAwards pages through a game's awards, newest first.
func (s *Store) ListAwards(ctx context.Context, slug string, gameID int64, page domain.Page) (domain.List[Award], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Award]{}, err
	}
	if _, err := getGame(ctx, s.db, p.ID, gameID); err != nil {
		return domain.List[Award]{}, err
	}
	before := page.After
	if before == 0 {
		before = 1<<63 - 1
	}
	return domain.QueryList(ctx, s.db, page, func(r domain.Scanner) (Award, error) {
		var a Award
		err := r.Scan(&a.ID, &a.GameID, &a.AttendeeID, &a.Points, &a.Reason, &a.TotalPoints, &a.AwardedAt)
		a.AwardedAt = a.AwardedAt.UTC()
		return a, err
	}, func(a Award) int64 { return a.ID }, `SELECT id, game_id, attendee_id, points, reason, total_points, awarded_at FROM game_awards
WHERE game_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, gameID, before, page.Limit+1)
}

// Leaderboard pages through a game's standings, highest total first. The
// cursor is the rank of the last row seen.
func (s *Store) Leaderboard(ctx context.Context, slug string, gameID int64, page domain.Page) (domain.List[Standing], error) {
	p, err := domain.ProjectAccess(ctx, s.db, slug)
	if err != nil {
		return domain.List[Standing]{}, err
	}
	if _, err := getGame(ctx, s.db, p.ID, gameID); err != nil {
		return domain.List[Standing]{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT s.attendee_id, a.first_name, a.last_name, s.total
FROM game_scores s JOIN attendees a ON a.id = s.attendee_id
WHERE s.game_id = $1 ORDER BY s.total DESC, s.attendee_id ASC LIMIT $2 OFFSET $3`, gameID, page.Limit+1, page.After)
	if err != nil {
		return domain.List[Standing]{}, err
	}
	defer rows.Close()
	var out []Standing
	for rows.Next() {
		st := Standing{Rank: page.After + int64(len(out)) + 1}
		if err := rows.Scan(&st.AttendeeID, &st.FirstName, &st.LastName, &st.TotalPoints); err != nil {
			return domain.List[Standing]{}, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return domain.List[Standing]{}, err
	}
	return domain.NewList(out, page.Limit, func(st Standing) int64 { return st.Rank }), nil
}
