package domain

import "strings"

// Scoped PubSub (seed 004): plugin rooms nested organization > event >
// session. Each level has its own canonical channel, so a publish to a scope
// is one event on one channel, and a room's participants subscribe to the
// three channels above them:
//
//	pubsub.{org}                  organization scope
//	pubsub.{org}.{event}          event scope
//	pubsub.{org}.{event}.{session} session scope: the room itself
//
// The organization is always part of the name, so a publish of one
// organization can never reach a room of another, whatever ids they share.

// PubSub scope types, as the seed names them.
const (
	PubSubOrganization = "organization"
	PubSubEvent        = "event"
	PubSubSession      = "session"
)

// PubSubRoom is the room a room token opens (claim "pubsub").
type PubSubRoom struct {
	Organization string `json:"organization_id"`
	Event        string `json:"event_id"`
	Session      string `json:"session_id"`
}

// Valid reports whether every id of the room is a valid channel id.
func (r PubSubRoom) Valid() bool {
	return validID(r.Organization) && validID(r.Event) && validID(r.Session)
}

// Channels are the room's channels: organization, event, session.
func (r PubSubRoom) Channels() []string {
	return []string{
		PubSubChannel(r.Organization, "", ""),
		PubSubChannel(r.Organization, r.Event, ""),
		PubSubChannel(r.Organization, r.Event, r.Session),
	}
}

// PubSubChannel is the channel of a scope: org alone, org+event, or
// org+event+session.
func PubSubChannel(org, event, session string) string {
	switch {
	case event == "":
		return "pubsub." + org
	case session == "":
		return "pubsub." + org + "." + event
	}
	return "pubsub." + org + "." + event + "." + session
}

// ValidPubSubID reports whether s may name an organization, event or
// session: 1 to 128 of [A-Za-z0-9_-] (uuids included).
func ValidPubSubID(s string) bool { return validID(s) }

func parsePubSub(rest string) ParsedChannel {
	parts := strings.Split(rest, ".")
	if len(parts) > 3 {
		return ParsedChannel{}
	}
	for _, p := range parts {
		if !validID(p) {
			return ParsedChannel{}
		}
	}
	pc := ParsedChannel{Kind: KindPubSub}
	pc.PubSub.Organization = parts[0]
	if len(parts) > 1 {
		pc.PubSub.Event = parts[1]
	}
	if len(parts) > 2 {
		pc.PubSub.Session = parts[2]
	}
	return pc
}
