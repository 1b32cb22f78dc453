package access

import "time"

// Reasons a scan is denied.
const (
	ReasonUnknownCredential = "unknown_credential"
	ReasonCredentialRevoked = "credential_revoked"
	ReasonNotAuthorized     = "not_authorized"
	ReasonOutsideTimeWindow = "outside_time_window"
)

// Directions of a scan.
const (
	DirectionIn  = "in"
	DirectionOut = "out"
)

// window is the time part of a rule that matched the attendee.
type window struct {
	StartsAt, EndsAt *time.Time
}

func (w window) contains(t time.Time) bool {
	return (w.StartsAt == nil || !t.Before(*w.StartsAt)) && (w.EndsAt == nil || t.Before(*w.EndsAt))
}

// decide is the access rule, apart from storage. found/revoked describe the
// credential; windows are the zone's rules that name the attendee or its
// type. Leaving is never blocked by rules: a person inside must be able to
// get out even after their window closed, and the out scan keeps occupancy
// right. It returns "" when access is granted.
func decide(found, revoked bool, direction string, windows []window, at time.Time) string {
	switch {
	case !found:
		return ReasonUnknownCredential
	case revoked:
		return ReasonCredentialRevoked
	case direction == DirectionOut:
		return ""
	case len(windows) == 0:
		return ReasonNotAuthorized
	}
	for _, w := range windows {
		if w.contains(at) {
			return ""
		}
	}
	return ReasonOutsideTimeWindow
}
