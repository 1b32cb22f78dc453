package gateway

import (
	"context"
	"fmt"

	"switchboard/domain"
)

// Authorizer decides who may read a canonical channel. Every protocol asks
// it, so the rules are the same over Pusher, Centrifugo and ActionCable.
type Authorizer struct {
	// Membership answers room questions; nil means no room is readable.
	Membership domain.Membership
}

// CanRead returns nil when claims may subscribe to the canonical channel, or
// a forbidden error saying why not.
//   - dashboard.project.{slug}.*: the projects claim holds slug or "*", or admin;
//   - a member's streams: only that member (sub);
//   - chat-room-{room}-channel: only the room's current participants;
//   - pubsub.{org}[.{event}[.{session}]]: a room token of a room below that
//     scope (domain/pubsub.go), or admin.
//
// Names that are not Switchboard channels are refused; protocols decide
// their own app channels before asking.
func (a *Authorizer) CanRead(ctx context.Context, claims *domain.Claims, channel string) error {
	if claims == nil {
		return domain.ErrUnauthorized
	}
	pc := domain.ParseChannel(channel)
	if claims.PubSub != nil && pc.Kind != domain.KindPubSub {
		return domain.Forbidden("a PubSub room token opens its room's channels only")
	}
	switch pc.Kind {
	case domain.KindPubSub:
		return canReadPubSub(claims, pc.PubSub)
	case domain.KindProject:
		if claims.CanAccessProject(pc.Project) {
			return nil
		}
		return domain.Forbidden("token may not read project %q", pc.Project)
	case domain.KindMember:
		if claims.Subject == pc.Member {
			return nil
		}
		return domain.Forbidden("channel %q belongs to another member", channel)
	case domain.KindRoom:
		if a.Membership == nil {
			return domain.Forbidden("room channels are not available")
		}
		ok, err := a.Membership.IsRoomParticipant(ctx, pc.Room, claims.Subject)
		if err != nil {
			return fmt.Errorf("room membership: %w", err)
		}
		if !ok {
			return domain.Forbidden("member %s is not a participant of room %s", claims.Subject, pc.Room)
		}
		return nil
	}
	return domain.Forbidden("unknown channel %q", channel)
}

// IsCanonical reports whether channel is one of Switchboard's own families.
func IsCanonical(channel string) bool {
	return domain.ParseChannel(channel).Kind != domain.KindOther
}

// canReadPubSub: a room token reads its organization's, its event's and its
// session's channel; an admin reads any (to watch a room).
func canReadPubSub(claims *domain.Claims, scope domain.PubSubRoom) error {
	if claims.Admin && claims.PubSub == nil {
		return nil
	}
	r := claims.PubSub
	if r == nil || r.Organization != scope.Organization ||
		(scope.Event != "" && r.Event != scope.Event) ||
		(scope.Session != "" && r.Session != scope.Session) {
		return domain.Forbidden("channel %q is not one of this token's PubSub room", domain.PubSubChannel(scope.Organization, scope.Event, scope.Session))
	}
	return nil
}

// CanPublish returns nil when claims may publish from a client to the
// canonical channel. Canonical channels carry domain events; the one
// exception is a PubSub room (session channel), where its participants talk
// to each other (PubSub.publish in the browser SDK).
func (a *Authorizer) CanPublish(claims *domain.Claims, channel string) error {
	pc := domain.ParseChannel(channel)
	if claims == nil || claims.PubSub == nil || pc.Kind != domain.KindPubSub || pc.PubSub.Session == "" || *claims.PubSub != pc.PubSub {
		return domain.Forbidden("clients publish only into their own PubSub room")
	}
	return nil
}
