package access

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2024, 1, 15, 14, 30, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	open := window{}
	current := window{StartsAt: at(-time.Hour), EndsAt: at(time.Hour)}
	past := window{StartsAt: at(-2 * time.Hour), EndsAt: at(-time.Hour)}
	future := window{StartsAt: at(time.Hour)}
	endsNow := window{EndsAt: at(0)}
	startsNow := window{StartsAt: at(0)}
	for _, tc := range []struct {
		name           string
		found, revoked bool
		direction      string
		windows        []window
		want           string
	}{
		{"unknown", false, false, DirectionIn, nil, ReasonUnknownCredential},
		{"unknown beats everything", false, true, DirectionOut, []window{open}, ReasonUnknownCredential},
		{"revoked", true, true, DirectionIn, []window{open}, ReasonCredentialRevoked},
		{"revoked cannot leave either", true, true, DirectionOut, nil, ReasonCredentialRevoked},
		{"no rule", true, false, DirectionIn, nil, ReasonNotAuthorized},
		{"open rule", true, false, DirectionIn, []window{open}, ""},
		{"current window", true, false, DirectionIn, []window{current}, ""},
		{"past window", true, false, DirectionIn, []window{past}, ReasonOutsideTimeWindow},
		{"future window", true, false, DirectionIn, []window{future}, ReasonOutsideTimeWindow},
		{"one of several windows", true, false, DirectionIn, []window{past, future, current}, ""},
		{"end is exclusive", true, false, DirectionIn, []window{endsNow}, ReasonOutsideTimeWindow},
		{"start is inclusive", true, false, DirectionIn, []window{startsNow}, ""},
		{"leaving without a rule", true, false, DirectionOut, nil, ""},
		{"leaving after the window", true, false, DirectionOut, []window{past}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.found, tc.revoked, tc.direction, tc.windows, now); got != tc.want {
				t.Fatalf("decide = %q, want %q", got, tc.want)
			}
		})
	}
}
