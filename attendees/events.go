// Package attendees is the attendee registry of a project: REST, storage and
// the AttendeeCreated/Updated/Deleted events on
// dashboard.project.{slug}.attendees.
package attendees

import "switchboard/domain"

// AttendeeCreated is fired when an attendee is created.
type AttendeeCreated struct {
	AttendeeID     int64            `json:"attendee_id"`
	ProjectID      int64            `json:"project_id"`
	FirstName      string           `json:"first_name"`
	LastName       string           `json:"last_name"`
	Email          string           `json:"email"`
	AttendeeTypeID *int64           `json:"attendee_type_id"`
	CreatedAt      domain.Timestamp `json:"created_at"`
}

// Name implements domain.Event.
func (AttendeeCreated) Name() string { return "AttendeeCreated" }

// AttendeeUpdated is fired when an attendee is modified; Changes holds only
// the fields that changed, with their new values.
type AttendeeUpdated struct {
	AttendeeID int64            `json:"attendee_id"`
	ProjectID  int64            `json:"project_id"`
	Changes    map[string]any   `json:"changes"`
	UpdatedAt  domain.Timestamp `json:"updated_at"`
}

// Name implements domain.Event.
func (AttendeeUpdated) Name() string { return "AttendeeUpdated" }

// AttendeeDeleted is fired when an attendee is removed.
type AttendeeDeleted struct {
	AttendeeID int64            `json:"attendee_id"`
	ProjectID  int64            `json:"project_id"`
	DeletedAt  domain.Timestamp `json:"deleted_at"`
}

// Name implements domain.Event.
func (AttendeeDeleted) Name() string { return "AttendeeDeleted" }

func scope(slug string) domain.Scope {
	return domain.Scope{Project: slug, Family: domain.FamilyAttendees}
}
