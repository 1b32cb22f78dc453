package domain_test

import (
	"testing"

	"switchboard/domain"
)

func TestParseChannel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want domain.ParsedChannel
	}{
		{"dashboard.project.demo.attendees", domain.ParsedChannel{Kind: domain.KindProject, Project: "demo", Family: "attendees"}},
		{"notification-channel-42", domain.ParsedChannel{Kind: domain.KindMember, Member: "42", Stream: domain.StreamNotifications}},
		{"chat-room-channel-42", domain.ParsedChannel{Kind: domain.KindMember, Member: "42", Stream: domain.StreamChatRooms}},
		{"chat-community-member-42-threads-channel", domain.ParsedChannel{Kind: domain.KindMember, Member: "42", Stream: domain.StreamThreads}},
		{"chat-room-7-channel", domain.ParsedChannel{Kind: domain.KindRoom, Room: "7"}},
		{"dashboard.project..attendees", domain.ParsedChannel{}},
		{"notification-channel-", domain.ParsedChannel{}},
		{"notification-channel-4 2", domain.ParsedChannel{}},
		{"news", domain.ParsedChannel{}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := domain.ParseChannel(tc.in); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestScopeChannelNamesRoundTrip(t *testing.T) {
	s := domain.Scope{Project: "demo", Family: "games", Members: []string{"1", "2", "1"}, Stream: domain.StreamThreads, Room: "9",
		Channels: []string{"chat-room-9-channel", "x"}}
	got := s.ChannelNames()
	want := []string{"dashboard.project.demo.games", "chat-community-member-1-threads-channel",
		"chat-community-member-2-threads-channel", "chat-room-9-channel", "x"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
