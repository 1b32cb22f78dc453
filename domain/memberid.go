package domain

import (
	"encoding/json"
	"errors"
	"strconv"
)

// MemberID is a community member's id (the JWT sub) in a payload: chat
// senders and participants, notification recipients and actors.
//
// On the wire an id that is a plain decimal integer is a JSON number, like
// the seed's room and message ids: Circle-style frontends keep member ids
// as numbers and compare them with ===, which a string "42" silently fails.
// An id with no numeric form (a uuid, "backend") stays a string, and so
// does one with a leading zero or beyond 2^53-1, which a number would not
// carry back unchanged. Channel names keep the text form
// (notification-channel-42); the Go value is always that text.
//
// Reading accepts both forms: "43" and 43 are the same member.
type MemberID string

// maxSafeInteger is the largest integer a JavaScript number holds exactly.
const maxSafeInteger = 1<<53 - 1

// Numeric reports whether id goes on the wire as a JSON number.
func (id MemberID) Numeric() bool {
	s := string(id)
	if s == "" || len(s) > 16 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n <= maxSafeInteger
}

// MarshalJSON writes a number for a numeric id, a string otherwise.
func (id MemberID) MarshalJSON() ([]byte, error) {
	if id.Numeric() {
		return []byte(id), nil
	}
	return json.Marshal(string(id))
}

var errMemberID = errors.New("member id must be a string or an integer")

// UnmarshalJSON accepts "43" or 43.
func (id *MemberID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = MemberID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errMemberID
	}
	if _, err := n.Int64(); err != nil {
		return errMemberID
	}
	*id = MemberID(n.String())
	return nil
}
