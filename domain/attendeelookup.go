package domain

import "context"

// AttendeeRef is what a module other than attendees may know of an
// attendee: enough to name it in its own rows and events, and to match
// rules by attendee type.
type AttendeeRef struct {
	ID             int64
	FirstName      string
	LastName       string
	AttendeeTypeID *int64
}

// AttendeeLookup is how access, games and forms ask the attendees module
// about an attendee without importing it; cmd/switchboard wires the
// attendees store in.
type AttendeeLookup interface {
	// FindAttendee loads attendee id of project projectID through q, which
	// is the caller's transaction when it holds one, so the check and the
	// caller's writes see the same snapshot. An unknown id (or one of
	// another project) is a NotFound error.
	FindAttendee(ctx context.Context, q Querier, projectID, id int64) (AttendeeRef, error)
}
