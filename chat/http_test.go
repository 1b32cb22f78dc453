package chat_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"switchboard/chat"
	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// server is the chat API behind the real REST conventions and bearer check.
type server struct {
	t      *testing.T
	url    string
	signer *domain.Signer
}

func newServer(t *testing.T, db *domain.DB) *server {
	signer, err := domain.NewSigner("test-secret")
	if err != nil {
		t.Fatal(err)
	}
	e := domain.NewEcho(slog.New(slog.NewTextHandler(io.Discard, nil)))
	chat.Routes(e.Group("/api/v1", domain.Authn(signer, true)), chat.NewStore(db), db)
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)
	return &server{t: t, url: ts.URL, signer: signer}
}

// do sends body (JSON unless a string) as member ("" for no token) and
// returns the status and decoded body.
func (s *server) do(member, method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	if member != "" {
		tok, err := s.signer.Mint(domain.Claims{Name: "M" + member, RegisteredClaims: jwtSub(member)}, time.Hour)
		if err != nil {
			s.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestHTTPStatusesAndErrors(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		s := newServer(t, db)
		st, room := s.do("42", "POST", "/api/v1/chat/rooms", map[string]any{"name": "Crew", "participant_ids": []string{"43"}})
		if st != 201 || room["id"] == nil || room["uuid"] == nil {
			t.Fatalf("create room: %d %v", st, room)
		}
		// REST shows member ids as the events do: numbers when numeric.
		if room["creator_id"] != 42.0 || room["current_participant"].(map[string]any)["community_member_id"] != 42.0 {
			t.Fatalf("create room: member ids must be numbers: %v", room)
		}
		base := "/api/v1/chat/rooms/" + jsonNum(room["id"])
		st, msg := s.do("43", "POST", base+"/messages", map[string]any{"body": "hi"})
		if st != 201 {
			t.Fatalf("post: %d %v", st, msg)
		}
		if sender := msg["sender"].(map[string]any); sender["id"] != 43.0 || sender["community_member_id"] != 43.0 {
			t.Fatalf("post: sender ids must be numbers: %v", msg)
		}
		msgPath := base + "/messages/" + jsonNum(msg["id"])

		for _, tc := range []struct {
			name, member, method, path string
			body                       any
			status                     int
			code                       string
		}{
			{"no token", "", "GET", "/api/v1/chat/rooms", nil, 401, "unauthorized"},
			{"malformed JSON", "42", "POST", "/api/v1/chat/rooms", "{", 400, "bad_request"},
			{"missing name", "42", "POST", "/api/v1/chat/rooms", map[string]any{}, 422, "validation_failed"},
			{"non-numeric room", "42", "GET", "/api/v1/chat/rooms/abc/messages", nil, 404, "not_found"},
			{"unknown room", "42", "GET", "/api/v1/chat/rooms/999999/messages", nil, 404, "not_found"},
			{"outsider reads", "99", "GET", base + "/messages", nil, 403, "forbidden"},
			{"outsider posts", "99", "POST", base + "/messages", map[string]any{"body": "x"}, 403, "forbidden"},
			{"empty body", "42", "POST", base + "/messages", map[string]any{"body": " "}, 422, "validation_failed"},
			{"rich text not an object", "42", "POST", base + "/messages", map[string]any{"body": "x", "rich_text_body": []int{1}}, 422, "validation_failed"},
			{"bad limit", "42", "GET", base + "/messages?limit=1000", nil, 422, "validation_failed"},
			{"bad cursor", "42", "GET", base + "/messages?cursor=!!", nil, 422, "validation_failed"},
			{"edit by non-sender", "42", "PATCH", msgPath, map[string]any{"body": "x"}, 403, "forbidden"},
			{"delete by non-sender", "42", "DELETE", msgPath, nil, 403, "forbidden"},
			{"bad participant", "42", "POST", base + "/participants", map[string]any{"member_id": "a/b"}, 422, "validation_failed"},
			{"fractional member id", "42", "POST", base + "/participants", `{"member_id":4.5}`, 400, "bad_request"},
			{"unknown thread", "42", "POST", "/api/v1/chat/threads/999999/read", nil, 404, "not_found"},
			{"remove a stranger", "42", "DELETE", base + "/participants/77", nil, 404, "not_found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, body := s.do(tc.member, tc.method, tc.path, tc.body)
				e, _ := body["error"].(map[string]any)
				if st != tc.status || e == nil || e["code"] != tc.code || e["message"] == "" {
					t.Fatalf("%s %s = %d %v, want %d %s", tc.method, tc.path, st, body, tc.status, tc.code)
				}
			})
		}

		for _, tc := range []struct {
			name, member, method, path string
			body                       any
			status                     int
		}{
			{"list rooms", "43", "GET", "/api/v1/chat/rooms", nil, 200},
			{"numeric participant ids", "42", "POST", "/api/v1/chat/rooms", `{"name":"n","participant_ids":[43,"44"]}`, 201},
			{"numeric member id", "42", "POST", base + "/participants", `{"member_id":45}`, 201},
			{"list messages", "43", "GET", base + "/messages", nil, 200},
			{"edit own", "43", "PATCH", msgPath, map[string]any{"body": "edited"}, 200},
			{"read", "42", "POST", base + "/read", nil, 204},
			{"pin", "42", "POST", base + "/pin", nil, 200},
			{"unpin", "42", "DELETE", base + "/pin", nil, 204},
			{"update", "42", "PATCH", base, map[string]any{"description": "d"}, 200},
			{"add participant", "42", "POST", base + "/participants", map[string]any{"member_id": "44"}, 201},
			{"remove participant", "42", "DELETE", base + "/participants/44", nil, 204},
			{"delete own", "43", "DELETE", msgPath, nil, 204},
			{"delete room", "42", "DELETE", base, nil, 204},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if st, body := s.do(tc.member, tc.method, tc.path, tc.body); st != tc.status {
					t.Fatalf("%s %s = %d %v, want %d", tc.method, tc.path, st, body, tc.status)
				}
			})
		}

		// Every event names the operation that caused it.
		ops := map[string]bool{}
		for _, env := range dbtest.Outbox(t, db) {
			if env.TriggeredBy == nil {
				t.Fatalf("%s without x-triggered-by", env.Name)
			}
			ops[env.Name+" "+env.TriggeredBy.OperationID] = true
		}
		for _, want := range []string{"chatRoomCreated v1.chat.rooms.store", "newMessage v1.chat.rooms.messages.store",
			"updatedMessage v1.chat.rooms.messages.update", "deletedMessage v1.chat.rooms.messages.destroy",
			"chatRoomRead v1.chat.rooms.read", "chatRoomPinned v1.chat.rooms.pin", "chatRoomUnPinned v1.chat.rooms.unpin",
			"chatRoomUpdated v1.chat.rooms.update", "chatRoomCreated v1.chat.rooms.participants.store",
			"chatRoomDeleted v1.chat.rooms.participants.destroy", "chatRoomDeleted v1.chat.rooms.destroy"} {
			if !ops[want] {
				t.Errorf("no %q event", want)
			}
		}
	}, chat.Migrations())
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
