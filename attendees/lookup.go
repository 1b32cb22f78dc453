package attendees

import (
	"context"

	"switchboard/domain"
)

// Find loads one attendee of a project for other modules (access, games,
// forms) inside their own transaction: their events name attendees, so an
// unknown id must be a 404 before anything is written.
func Find(ctx context.Context, q domain.Querier, projectID, id int64) (Attendee, error) {
	return get(ctx, q, projectID, id)
}
