package chat_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/chat"
	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
)

// FuzzChatBodies sends arbitrary bodies to the chat routes that take one
// (room create and update, participants, message post and edit) as a room
// member, on one SQLite store per fuzz process; apitest.FuzzBodies says what
// must hold for every input. Seeds: testdata/fuzz/FuzzChatBodies (the
// fixture message is id 1).
func FuzzChatBodies(f *testing.F) {
	db := dbtest.SQLite(f, chat.Migrations())
	api := apitest.New(f, db, func(g *echo.Group) { chat.Routes(g, chat.NewStore(db), db) })
	room := api.ID("/chat/rooms", api.User, map[string]any{"name": "Crew", "participant_ids": []string{"1"}})
	rp := fmt.Sprintf("/chat/rooms/%d", room)
	msg := api.ID(rp+"/messages", api.User, map[string]any{"body": "hi"})
	apitest.FuzzBodies(f, api, []apitest.Endpoint{
		{Method: http.MethodPost, Path: "/chat/rooms", Token: api.User},
		{Method: http.MethodPatch, Path: rp, Token: api.User},
		{Method: http.MethodPost, Path: rp + "/participants", Token: api.User},
		{Method: http.MethodPost, Path: rp + "/messages", Token: api.User},
		{Method: http.MethodPatch, Path: fmt.Sprintf("%s/messages/%d", rp, msg), Token: api.User},
	})
}
