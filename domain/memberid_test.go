package domain_test

import (
	"encoding/json"
	"testing"

	"switchboard/domain"
)

func TestMemberIDJSON(t *testing.T) {
	tests := []struct {
		id   domain.MemberID
		wire string
	}{
		{"42", `42`},
		{"0", `0`},
		{"9007199254740991", `9007199254740991`}, // 2^53-1: exact in JavaScript
		{"9007199254740992", `"9007199254740992"`},
		{"007", `"007"`}, // 7 would name another channel
		{"backend", `"backend"`},
		{"3f2a-9c", `"3f2a-9c"`},
		{"", `""`},
	}
	for _, tt := range tests {
		t.Run(string(tt.id), func(t *testing.T) {
			b, err := json.Marshal(tt.id)
			if err != nil || string(b) != tt.wire {
				t.Fatalf("marshal: %s (%v), want %s", b, err, tt.wire)
			}
			var back domain.MemberID
			if err := json.Unmarshal(b, &back); err != nil || back != tt.id {
				t.Fatalf("round trip: %q (%v), want %q", back, err, tt.id)
			}
		})
	}
	for _, in := range []string{`43`, `"43"`} {
		var id domain.MemberID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != "43" {
			t.Fatalf("unmarshal %s: %q (%v)", in, id, err)
		}
	}
	for _, in := range []string{`4.5`, `true`, `{}`} {
		var id domain.MemberID
		if err := json.Unmarshal([]byte(in), &id); err == nil {
			t.Fatalf("unmarshal %s accepted as %q", in, id)
		}
	}
}
