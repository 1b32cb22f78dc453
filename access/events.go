// Package access is access control: zones, access points (kiosks, gates)
// in zones, credentials (badge barcodes, NFC ids) bound to attendees, rules
// saying who may enter a zone and when, and scans — each scan is decided
// synchronously, stored as an audit row and announced as AccessGranted or
// AccessDenied on dashboard.project.{slug}.access.
package access

import "switchboard/domain"

// AccessGranted is fired when access is granted at an access point.
type AccessGranted struct {
	AttendeeID    int64            `json:"attendee_id"`
	AccessPointID int64            `json:"access_point_id"`
	AccessZoneID  int64            `json:"access_zone_id"`
	CredentialID  int64            `json:"credential_id"`
	Direction     string           `json:"direction"`
	Timestamp     domain.Timestamp `json:"timestamp"`
}

// Name implements domain.Event.
func (AccessGranted) Name() string { return "AccessGranted" }

// AccessDenied is fired when access is denied. It names the presented value,
// not an attendee: the value may match no credential at all.
type AccessDenied struct {
	CredentialValue string           `json:"credential_value"`
	AccessPointID   int64            `json:"access_point_id"`
	Reason          string           `json:"reason"`
	Timestamp       domain.Timestamp `json:"timestamp"`
}

// Name implements domain.Event.
func (AccessDenied) Name() string { return "AccessDenied" }

func scope(slug string) domain.Scope {
	return domain.Scope{Project: slug, Family: domain.FamilyAccess}
}
