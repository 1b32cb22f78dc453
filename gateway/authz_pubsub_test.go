package gateway_test

import (
	"context"
	"testing"

	"switchboard/domain"
	"switchboard/gateway"
)

// TestPubSubAuthorization is the routing table seen from a subscriber: a
// room token reads its organization's, event's and session's channels and
// nothing else, and publishes into its session only.
func TestPubSubAuthorization(t *testing.T) {
	room := func(org, event, session string) *domain.Claims {
		c := &domain.Claims{PubSub: &domain.PubSubRoom{Organization: org, Event: event, Session: session}}
		c.Subject = "p1"
		return c
	}
	a1 := room("acme", "ev1", "s1")
	admin := &domain.Claims{Admin: true}
	admin.Subject = "staff"
	member := &domain.Claims{Projects: []string{"*"}}
	member.Subject = "p1"
	adminRoom := room("acme", "ev1", "s1")
	adminRoom.Admin = true
	for _, tc := range []struct {
		name          string
		claims        *domain.Claims
		channel       string
		read, publish bool
	}{
		{"own organization", a1, "pubsub.acme", true, false},
		{"own event", a1, "pubsub.acme.ev1", true, false},
		{"own session", a1, "pubsub.acme.ev1.s1", true, true},
		{"other session of the event", a1, "pubsub.acme.ev1.s2", false, false},
		{"other event", a1, "pubsub.acme.ev2", false, false},
		{"same ids, other organization", a1, "pubsub.globex.ev1.s1", false, false},
		{"other organization", a1, "pubsub.globex", false, false},
		{"a member's stream", a1, "notification-channel-p1", false, false},
		{"a project", a1, "dashboard.project.demo.attendees", false, false},
		{"an admin claim in a room token changes nothing", adminRoom, "pubsub.globex", false, false},
		{"admin watches any room", admin, "pubsub.globex.ev1.s1", true, false},
		{"members read no room", member, "pubsub.acme.ev1.s1", false, false},
		{"malformed: too deep", a1, "pubsub.acme.ev1.s1.x", false, false},
		{"malformed: empty part", a1, "pubsub.acme..s1", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var az gateway.Authorizer
			if err := az.CanRead(context.Background(), tc.claims, tc.channel); (err == nil) != tc.read {
				t.Errorf("CanRead = %v, want allowed=%v", err, tc.read)
			}
			if err := az.CanPublish(tc.claims, tc.channel); (err == nil) != tc.publish {
				t.Errorf("CanPublish = %v, want allowed=%v", err, tc.publish)
			}
		})
	}
}
