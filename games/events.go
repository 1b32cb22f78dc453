// Package games is gamification: games of a project, point awards to
// attendees with a running total per game, a leaderboard, and PointsAwarded
// on dashboard.project.{slug}.games.
package games

import "switchboard/domain"

// PointsAwarded is fired when points are awarded to an attendee. TotalPoints
// is the attendee's total in the game after this award, computed in the
// award's own transaction, so consecutive events of one attendee never
// repeat or skip a total.
type PointsAwarded struct {
	GameID      int64            `json:"game_id"`
	AttendeeID  int64            `json:"attendee_id"`
	Points      int64            `json:"points"`
	Reason      string           `json:"reason"`
	TotalPoints int64            `json:"total_points"`
	AwardedAt   domain.Timestamp `json:"awarded_at"`
}

// Name implements domain.Event.
func (PointsAwarded) Name() string { return "PointsAwarded" }

func scope(slug string) domain.Scope {
	return domain.Scope{Project: slug, Family: domain.FamilyGames}
}
