package domain

import (
	"context"
	"strings"
)

// MemberStream names a per-member channel family.
type MemberStream string

// The per-member channel families of the community seed.
const (
	StreamNotifications MemberStream = "notifications" // notification-channel-{member}
	StreamChatRooms     MemberStream = "chat-rooms"    // chat-room-channel-{member}
	StreamThreads       MemberStream = "threads"       // chat-community-member-{member}-threads-channel
)

// Project channel families (dashboard.project.{slug}.{family}).
const (
	FamilyAttendees = "attendees"
	FamilyAccess    = "access"
	FamilySocial    = "social"
	FamilyForms     = "forms"
	FamilyGames     = "games"
)

// Scope says which canonical channels an event goes to. Fields combine: an
// event may go to a project family, to members' streams, to a room and to
// explicit channels at once.
type Scope struct {
	Project  string       `json:"project,omitempty"`
	Family   string       `json:"family,omitempty"`
	Members  []string     `json:"members,omitempty"`
	Stream   MemberStream `json:"stream,omitempty"`
	Room     string       `json:"room,omitempty"`
	Channels []string     `json:"channels,omitempty"`
}

// ChannelNames resolves the scope to canonical channel names, without
// duplicates, in a stable order.
func (s Scope) ChannelNames() []string {
	var out []string
	add := func(c string) {
		for _, x := range out {
			if x == c {
				return
			}
		}
		out = append(out, c)
	}
	if s.Project != "" && s.Family != "" {
		add(ProjectChannel(s.Project, s.Family))
	}
	for _, m := range s.Members {
		if c := MemberChannel(s.Stream, m); c != "" {
			add(c)
		}
	}
	if s.Room != "" {
		add(RoomChannel(s.Room))
	}
	for _, c := range s.Channels {
		add(c)
	}
	return out
}

// ProjectChannel is dashboard.project.{slug}.{family}.
func ProjectChannel(slug, family string) string {
	return "dashboard.project." + slug + "." + family
}

// MemberChannel is the canonical channel of member's stream, or "" when the
// stream is unknown.
func MemberChannel(stream MemberStream, member string) string {
	switch stream {
	case StreamNotifications:
		return "notification-channel-" + member
	case StreamChatRooms:
		return "chat-room-channel-" + member
	case StreamThreads:
		return "chat-community-member-" + member + "-threads-channel"
	}
	return ""
}

// RoomChannel is chat-room-{room}-channel.
func RoomChannel(room string) string { return "chat-room-" + room + "-channel" }

// ChannelKind classifies a canonical channel for authorization.
type ChannelKind int

// Channel kinds known to the contract.
const (
	KindOther   ChannelKind = iota // not a Switchboard channel
	KindProject                    // dashboard.project.{slug}.{family}
	KindMember                     // one of a member's streams
	KindRoom                       // chat-room-{room}-channel
	KindPubSub                     // pubsub.{org}[.{event}[.{session}]]
)

// ParsedChannel is a canonical channel name taken apart.
type ParsedChannel struct {
	Kind    ChannelKind
	Project string
	Family  string
	Member  string
	Stream  MemberStream
	Room    string
	// PubSub is the scope of a pubsub channel: Event and Session are empty
	// above their level.
	PubSub PubSubRoom
}

// ParseChannel recognises the canonical channel families. Names that are not
// ours come back with KindOther.
func ParseChannel(name string) ParsedChannel {
	if rest, ok := strings.CutPrefix(name, "dashboard.project."); ok {
		i := strings.LastIndexByte(rest, '.')
		if i > 0 && i < len(rest)-1 && validID(rest[:i]) {
			return ParsedChannel{Kind: KindProject, Project: rest[:i], Family: rest[i+1:]}
		}
		return ParsedChannel{}
	}
	if rest, ok := strings.CutPrefix(name, "pubsub."); ok {
		return parsePubSub(rest)
	}
	if m, ok := strings.CutPrefix(name, "notification-channel-"); ok && validID(m) {
		return ParsedChannel{Kind: KindMember, Member: m, Stream: StreamNotifications}
	}
	if m, ok := strings.CutPrefix(name, "chat-room-channel-"); ok && validID(m) {
		return ParsedChannel{Kind: KindMember, Member: m, Stream: StreamChatRooms}
	}
	if rest, ok := strings.CutPrefix(name, "chat-community-member-"); ok {
		if m, ok := strings.CutSuffix(rest, "-threads-channel"); ok && validID(m) {
			return ParsedChannel{Kind: KindMember, Member: m, Stream: StreamThreads}
		}
	}
	if rest, ok := strings.CutPrefix(name, "chat-room-"); ok {
		if r, ok := strings.CutSuffix(rest, "-channel"); ok && validID(r) {
			return ParsedChannel{Kind: KindRoom, Room: r}
		}
	}
	return ParsedChannel{}
}

func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Membership answers the gateway's question "may member read room?". The
// chat module implements it; cmd/switchboard wires it in.
type Membership interface {
	IsRoomParticipant(ctx context.Context, room, member string) (bool, error)
}

// RoomResolver maps a chat room's uuid to its id: ActionCable identifiers
// may name a room either way ({"chat_room_id":7} or {"chat_room_uuid":...}).
// The chat module implements it; a missing room is a not_found error.
type RoomResolver interface {
	RoomIDByUUID(ctx context.Context, uuid string) (string, error)
}
