package attendees

import (
	"context"

	"switchboard/domain"
)

var _ domain.AttendeeLookup = (*Store)(nil)

// FindAttendee answers domain.AttendeeLookup for other modules (access,
// games, forms) inside their own transaction q: their events name
// attendees, so an unknown id must be a 404 before anything is written.
func (s *Store) FindAttendee(ctx context.Context, q domain.Querier, projectID, id int64) (domain.AttendeeRef, error) {
	a, err := get(ctx, q, projectID, id)
	if err != nil {
		return domain.AttendeeRef{}, err
	}
	return domain.AttendeeRef{ID: a.ID, FirstName: a.FirstName, LastName: a.LastName, AttendeeTypeID: a.AttendeeTypeID}, nil
}
