// Package forms is project forms with typed fields, attendee responses
// validated against them, and FormResponseCreated/FormResponseUpdated on
// dashboard.project.{slug}.forms.
package forms

import (
	"encoding/json"

	"switchboard/domain"
)

// FormResponseCreated is fired when an attendee submits a form.
type FormResponseCreated struct {
	FormID      int64            `json:"form_id"`
	ResponseID  int64            `json:"response_id"`
	AttendeeID  int64            `json:"attendee_id"`
	Answers     json.RawMessage  `json:"answers"`
	SubmittedAt domain.Timestamp `json:"submitted_at"`
}

// Name implements domain.Event.
func (FormResponseCreated) Name() string { return "FormResponseCreated" }

// FormResponseUpdated is fired when a response's answers are replaced;
// Answers is the whole new set, SubmittedAt the original submission.
type FormResponseUpdated struct {
	FormID      int64            `json:"form_id"`
	ResponseID  int64            `json:"response_id"`
	AttendeeID  int64            `json:"attendee_id"`
	Answers     json.RawMessage  `json:"answers"`
	SubmittedAt domain.Timestamp `json:"submitted_at"`
	UpdatedAt   domain.Timestamp `json:"updated_at"`
}

// Name implements domain.Event.
func (FormResponseUpdated) Name() string { return "FormResponseUpdated" }

func scope(slug string) domain.Scope {
	return domain.Scope{Project: slug, Family: domain.FamilyForms}
}
