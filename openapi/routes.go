package openapi

import (
	"encoding/json"
	"reflect"

	"switchboard/access"
	"switchboard/attendees"
	"switchboard/chat"
	"switchboard/console"
	"switchboard/domain"
	"switchboard/forms"
	"switchboard/games"
	"switchboard/gateway/webhooks"
	"switchboard/notifications"
	"switchboard/pubsub"
	"switchboard/social"
)

// The table: one entry per route the binary serves (see Build for what a
// route's traits add: auth → 401/403, body → 400/413/422, project → 403/404,
// idempotent → Idempotency-Key and 409/422, paged → limit/cursor and 422,
// a path parameter → 404, every route but the health probes → 503).
//
// Paths are under /api/v1 unless they start elsewhere.
var routes = []route{
	// --- projects (domain/project.go)
	{method: "POST", path: "/api/v1/projects", id: "v1.projects.store", tag: "projects", auth: bearer,
		summary: "Create a project (admin token)", body: req[projectInput]("slug", "name"),
		replies: []reply{res[domain.Project](201, "the project")}, errs: []int{409}},
	{method: "GET", path: "/api/v1/projects/{slug}", id: "v1.projects.show", tag: "projects", auth: bearer, project: true,
		summary: "Show a project", replies: []reply{res[domain.Project](200, "the project")}},

	// --- attendees (attendees/http.go)
	{method: "POST", path: "/api/v1/projects/{slug}/attendees", id: "v1.project.attendees.store", tag: "attendees",
		auth: bearer, project: true, idempotent: true, summary: "Create an attendee (→ AttendeeCreated)",
		body:    req[attendees.Input]("first_name", "last_name", "email"),
		replies: []reply{res[attendees.Attendee](201, "the attendee")}},
	{method: "GET", path: "/api/v1/projects/{slug}/attendees", id: "v1.project.attendees.index", tag: "attendees",
		auth: bearer, project: true, paged: true, summary: "List attendees",
		replies: []reply{res[domain.List[attendees.Attendee]](200, "a page of attendees")}},
	{method: "GET", path: "/api/v1/projects/{slug}/attendees/{id}", id: "v1.project.attendees.show", tag: "attendees",
		auth: bearer, project: true, summary: "Show an attendee",
		replies: []reply{res[attendees.Attendee](200, "the attendee")}},
	{method: "PATCH", path: "/api/v1/projects/{slug}/attendees/{id}", id: "v1.project.attendees.update", tag: "attendees",
		auth: bearer, project: true, summary: "Update an attendee (→ AttendeeUpdated with the changed fields)",
		description: "Absent fields are left alone.", body: req[attendees.Input](),
		replies: []reply{res[attendees.Attendee](200, "the attendee")}},
	{method: "DELETE", path: "/api/v1/projects/{slug}/attendees/{id}", id: "v1.project.attendees.destroy", tag: "attendees",
		auth: bearer, project: true, summary: "Delete an attendee (→ AttendeeDeleted)",
		replies: []reply{noContent("deleted")}},

	// --- access control (access/http.go); configuration needs an admin token
	{method: "POST", path: "/api/v1/projects/{slug}/access/zones", id: "v1.project.access.zones.store", tag: "access",
		auth: bearer, project: true, idempotent: true, summary: "Create a zone (admin token)",
		body: req[access.ZoneInput]("name"), replies: []reply{res[access.Zone](201, "the zone")}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/zones", id: "v1.project.access.zones.index", tag: "access",
		auth: bearer, project: true, paged: true, summary: "List zones",
		replies: []reply{res[domain.List[access.Zone]](200, "a page of zones")}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/zones/{id}", id: "v1.project.access.zones.show", tag: "access",
		auth: bearer, project: true, summary: "Show a zone", replies: []reply{res[access.Zone](200, "the zone")}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/zones/{id}/occupancy", id: "v1.project.access.zones.occupancy",
		tag: "access", auth: bearer, project: true, summary: "How many people are in a zone",
		replies: []reply{res[access.Occupancy](200, "granted ins minus granted outs")}},
	{method: "POST", path: "/api/v1/projects/{slug}/access/points", id: "v1.project.access.points.store", tag: "access",
		auth: bearer, project: true, idempotent: true, summary: "Create an access point of a zone (admin token)",
		body: req[access.PointInput]("access_zone_id", "name"), replies: []reply{res[access.Point](201, "the point")}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/points", id: "v1.project.access.points.index", tag: "access",
		auth: bearer, project: true, paged: true, summary: "List access points",
		replies: []reply{res[domain.List[access.Point]](200, "a page of points")}},
	{method: "POST", path: "/api/v1/projects/{slug}/access/credentials", id: "v1.project.access.credentials.store",
		tag: "access", auth: bearer, project: true, idempotent: true, summary: "Give an attendee a credential (admin token)",
		body:    req[access.CredentialInput]("attendee_id", "value"),
		replies: []reply{res[access.Credential](201, "the credential")}, errs: []int{409}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/credentials", id: "v1.project.access.credentials.index",
		tag: "access", auth: bearer, project: true, paged: true, summary: "List credentials",
		replies: []reply{res[domain.List[access.Credential]](200, "a page of credentials")}},
	{method: "POST", path: "/api/v1/projects/{slug}/access/credentials/{id}/revoke", id: "v1.project.access.credentials.revoke",
		tag: "access", auth: bearer, project: true, idempotent: true, summary: "Revoke a credential (admin token)",
		replies: []reply{res[access.Credential](200, "the revoked credential")}},
	{method: "POST", path: "/api/v1/projects/{slug}/access/rules", id: "v1.project.access.rules.store", tag: "access",
		auth: bearer, project: true, idempotent: true, summary: "Let an attendee type or one attendee into a zone (admin token)",
		description: "Exactly one of attendee_type_id and attendee_id; starts_at and ends_at optionally bound the rule.",
		body:        req[access.RuleInput]("access_zone_id"), replies: []reply{res[access.Rule](201, "the rule")}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/rules", id: "v1.project.access.rules.index", tag: "access",
		auth: bearer, project: true, paged: true, summary: "List rules",
		replies: []reply{res[domain.List[access.Rule]](200, "a page of rules")}},
	{method: "DELETE", path: "/api/v1/projects/{slug}/access/rules/{id}", id: "v1.project.access.rules.destroy", tag: "access",
		auth: bearer, project: true, summary: "Delete a rule (admin token)", replies: []reply{noContent("deleted")}},
	{method: "POST", path: "/api/v1/projects/{slug}/access/scans", id: "v1.project.access.scans.store", tag: "access",
		auth: bearer, project: true, idempotent: true, summary: "Record a kiosk scan (→ AccessGranted or AccessDenied)",
		description: "201 whether granted or denied: the scan is recorded either way and `granted` says which.",
		body:        req[access.ScanInput]("credential_value", "access_point_id", "direction"),
		replies:     []reply{res[access.Scan](201, "the scan and its decision")}},
	{method: "GET", path: "/api/v1/projects/{slug}/access/scans", id: "v1.project.access.scans.index", tag: "access",
		auth: bearer, project: true, paged: true, summary: "List scans",
		replies: []reply{res[domain.List[access.Scan]](200, "a page of scans")}},

	// --- social stream (social/http.go)
	{method: "POST", path: "/api/v1/projects/{slug}/social/streams", id: "v1.project.social.streams.store", tag: "social",
		auth: bearer, project: true, idempotent: true, summary: "Create a stream (admin token)",
		body: req[social.StreamInput]("name"), replies: []reply{res[social.Stream](201, "the stream")}},
	{method: "GET", path: "/api/v1/projects/{slug}/social/streams", id: "v1.project.social.streams.index", tag: "social",
		auth: bearer, project: true, paged: true, summary: "List streams",
		replies: []reply{res[domain.List[social.Stream]](200, "a page of streams")}},
	{method: "GET", path: "/api/v1/projects/{slug}/social/streams/{stream}", id: "v1.project.social.streams.show", tag: "social",
		auth: bearer, project: true, summary: "Show a stream", replies: []reply{res[social.Stream](200, "the stream")}},
	{method: "POST", path: "/api/v1/projects/{slug}/social/streams/{stream}/posts", id: "v1.project.social.posts.store",
		tag: "social", auth: bearer, project: true, idempotent: true, summary: "Post to a stream (→ PostCreated)",
		body: req[social.PostInput]("content"), replies: []reply{res[social.Post](201, "the post")}},
	{method: "GET", path: "/api/v1/projects/{slug}/social/streams/{stream}/posts", id: "v1.project.social.posts.index",
		tag: "social", auth: bearer, project: true, paged: true, summary: "List a stream's posts",
		replies: []reply{res[domain.List[social.Post]](200, "a page of posts")}},
	{method: "POST", path: "/api/v1/projects/{slug}/social/streams/{stream}/posts/{post}/hide", id: "v1.project.social.posts.hide",
		tag: "social", auth: bearer, project: true, idempotent: true, summary: "Hide a post (admin token; → PostHidden)",
		replies: []reply{res[social.Post](200, "the hidden post")}},

	// --- games (games/http.go)
	{method: "POST", path: "/api/v1/projects/{slug}/games", id: "v1.project.games.store", tag: "games", auth: bearer,
		project: true, idempotent: true, summary: "Create a game",
		body: req[games.GameInput]("name"), replies: []reply{res[games.Game](201, "the game")}},
	{method: "GET", path: "/api/v1/projects/{slug}/games", id: "v1.project.games.index", tag: "games", auth: bearer,
		project: true, paged: true, summary: "List games", replies: []reply{res[domain.List[games.Game]](200, "a page of games")}},
	{method: "GET", path: "/api/v1/projects/{slug}/games/{id}", id: "v1.project.games.show", tag: "games", auth: bearer,
		project: true, summary: "Show a game", replies: []reply{res[games.Game](200, "the game")}},
	{method: "POST", path: "/api/v1/projects/{slug}/games/{id}/awards", id: "v1.project.games.awards.store", tag: "games",
		auth: bearer, project: true, idempotent: true, summary: "Award points (→ PointsAwarded with the running total)",
		body:    req[games.AwardInput]("attendee_id", "points", "reason"),
		replies: []reply{res[games.Award](201, "the award")}},
	{method: "GET", path: "/api/v1/projects/{slug}/games/{id}/awards", id: "v1.project.games.awards.index", tag: "games",
		auth: bearer, project: true, paged: true, summary: "List a game's awards",
		replies: []reply{res[domain.List[games.Award]](200, "a page of awards")}},
	{method: "GET", path: "/api/v1/projects/{slug}/games/{id}/leaderboard", id: "v1.project.games.leaderboard", tag: "games",
		auth: bearer, project: true, paged: true, summary: "A game's leaderboard",
		replies: []reply{res[domain.List[games.Standing]](200, "a page of standings, best first")}},

	// --- forms (forms/http.go)
	{method: "POST", path: "/api/v1/projects/{slug}/forms", id: "v1.project.forms.store", tag: "forms", auth: bearer,
		project: true, idempotent: true, summary: "Create a form",
		body: req[forms.FormInput]("title", "fields"), replies: []reply{res[forms.Form](201, "the form")}},
	{method: "GET", path: "/api/v1/projects/{slug}/forms", id: "v1.project.forms.index", tag: "forms", auth: bearer,
		project: true, paged: true, summary: "List forms", replies: []reply{res[domain.List[forms.Form]](200, "a page of forms")}},
	{method: "GET", path: "/api/v1/projects/{slug}/forms/{id}", id: "v1.project.forms.show", tag: "forms", auth: bearer,
		project: true, summary: "Show a form", replies: []reply{res[forms.Form](200, "the form")}},
	{method: "POST", path: "/api/v1/projects/{slug}/forms/{id}/responses", id: "v1.project.forms.responses.store", tag: "forms",
		auth: bearer, project: true, idempotent: true, summary: "Submit a response (→ FormResponseCreated)",
		body:    req[forms.ResponseInput]("attendee_id", "answers"),
		replies: []reply{res[forms.Response](201, "the response")}},
	{method: "GET", path: "/api/v1/projects/{slug}/forms/{id}/responses", id: "v1.project.forms.responses.index", tag: "forms",
		auth: bearer, project: true, paged: true, summary: "List a form's responses",
		replies: []reply{res[domain.List[forms.Response]](200, "a page of responses")}},
	{method: "GET", path: "/api/v1/projects/{slug}/forms/{id}/responses/{response}", id: "v1.project.forms.responses.show",
		tag: "forms", auth: bearer, project: true, summary: "Show a response",
		replies: []reply{res[forms.Response](200, "the response")}},
	{method: "PATCH", path: "/api/v1/projects/{slug}/forms/{id}/responses/{response}", id: "v1.project.forms.responses.update",
		tag: "forms", auth: bearer, project: true, summary: "Replace a response's answers (→ FormResponseUpdated)",
		body: req[forms.ResponseInput]("answers"), replies: []reply{res[forms.Response](200, "the response")}},

	// --- chat (chat/http.go); the bearer's sub is the acting member
	{method: "GET", path: "/api/v1/chat/rooms", id: "v1.chat.rooms.index", tag: "chat", auth: bearer, paged: true,
		summary: "The bearer's chat rooms", replies: []reply{res[domain.List[chat.RoomView]](200, "a page of rooms")}},
	{method: "POST", path: "/api/v1/chat/rooms", id: "v1.chat.rooms.store", tag: "chat", auth: bearer, idempotent: true,
		summary: "Create a chat room (→ chatRoomCreated to each participant)", body: req[chat.RoomInput]("name"),
		replies: []reply{res[chat.RoomView](201, "the room as the creator sees it")}, errs: []int{409}},
	{method: "GET", path: "/api/v1/chat/rooms/{room}", id: "v1.chat.rooms.show", tag: "chat", auth: bearer,
		summary: "Show a room (participants only)", replies: []reply{res[chat.RoomView](200, "the room")}},
	{method: "PATCH", path: "/api/v1/chat/rooms/{room}", id: "v1.chat.rooms.update", tag: "chat", auth: bearer,
		summary: "Change a room (→ chatRoomUpdated)", description: "Absent fields stay; `pinned_message_id: null` unpins the message.",
		body: req[chat.RoomPatch](), replies: []reply{res[chat.RoomView](200, "the room")}},
	{method: "DELETE", path: "/api/v1/chat/rooms/{room}", id: "v1.chat.rooms.destroy", tag: "chat", auth: bearer,
		summary: "Delete a room (its creator; → chatRoomDeleted)", replies: []reply{noContent("deleted")}},
	{method: "POST", path: "/api/v1/chat/rooms/{room}/participants", id: "v1.chat.rooms.participants.store", tag: "chat",
		auth: bearer, summary: "Add a participant", body: req[participantInput]("member_id"),
		replies: []reply{res[chat.ParticipantJSON](201, "the participation")}},
	{method: "DELETE", path: "/api/v1/chat/rooms/{room}/participants/{member}", id: "v1.chat.rooms.participants.destroy",
		tag: "chat", auth: bearer, summary: "Remove a participant (the creator, or oneself); live subscriptions are dropped",
		replies: []reply{noContent("removed")}},
	{method: "POST", path: "/api/v1/chat/rooms/{room}/read", id: "v1.chat.rooms.read", tag: "chat", auth: bearer,
		summary: "Mark a room read (→ chatRoomRead)", replies: []reply{noContent("marked")}},
	{method: "POST", path: "/api/v1/chat/rooms/{room}/pin", id: "v1.chat.rooms.pin", tag: "chat", auth: bearer,
		summary: "Pin a room for the bearer (→ chatRoomPinned)", errs: []int{422},
		replies: []reply{res[chat.ChatRoomPinned](200, "pinned")}},
	{method: "DELETE", path: "/api/v1/chat/rooms/{room}/pin", id: "v1.chat.rooms.unpin", tag: "chat", auth: bearer,
		summary: "Unpin a room (→ chatRoomUnPinned)", replies: []reply{noContent("unpinned")}},
	{method: "GET", path: "/api/v1/chat/rooms/{room}/messages", id: "v1.chat.rooms.messages.index", tag: "chat",
		auth: bearer, paged: true, summary: "A room's messages, or a thread's replies with parent_message_id",
		query: []Schema{{"name": "parent_message_id", "in": "query", "required": false,
			"description": "list the replies to this message", "schema": Schema{"type": "integer", "format": "int64", "minimum": 1}}},
		replies: []reply{res[domain.List[chat.JSONMessage]](200, "a page of messages")}},
	{method: "POST", path: "/api/v1/chat/rooms/{room}/messages", id: "v1.chat.rooms.messages.store", tag: "chat",
		auth: bearer, idempotent: true, summary: "Post a message or a reply (→ newMessage)",
		body: req[chat.MessageInput]("body"),
		replies: []reply{res[chat.JSONMessage](201, "the message"),
			res[chat.JSONMessage](200, "the message posted before with the same creation_uuid")}},
	{method: "PATCH", path: "/api/v1/chat/rooms/{room}/messages/{id}", id: "v1.chat.rooms.messages.update", tag: "chat",
		auth: bearer, summary: "Edit a message (its sender; → updatedMessage)", body: req[chat.EditInput]("body"),
		replies: []reply{res[chat.MessageJSON](200, "the message")}},
	{method: "DELETE", path: "/api/v1/chat/rooms/{room}/messages/{id}", id: "v1.chat.rooms.messages.destroy", tag: "chat",
		auth: bearer, summary: "Delete a message (its sender; → deletedMessage)", replies: []reply{noContent("deleted")}},
	{method: "POST", path: "/api/v1/chat/threads/{thread}/read", id: "v1.chat.threads.read", tag: "chat", auth: bearer,
		summary: "Mark a thread read (→ chatThreadRead)", replies: []reply{noContent("marked")}},

	// --- notifications (notifications/http.go)
	{method: "POST", path: "/api/v1/members/{member}/notifications", id: "v1.member.notifications.store", tag: "notifications",
		auth: bearer, idempotent: true, summary: "Notify a member (admin token; → newNotification, updateNewNotificationCount)",
		body:    req[notifications.Input]("type", "title", "body"),
		replies: []reply{res[notifications.Notification](201, "the notification")}},
	{method: "GET", path: "/api/v1/notifications", id: "v1.notifications.index", tag: "notifications", auth: bearer,
		paged: true, summary: "The bearer's notifications, newest first",
		replies: []reply{res[domain.List[notifications.Notification]](200, "a page of notifications")}},
	{method: "GET", path: "/api/v1/notifications/count", id: "v1.notifications.count", tag: "notifications", auth: bearer,
		summary: "How many are unread", replies: []reply{res[notifications.UpdateNewNotificationCount](200, "the unread count")}},
	{method: "POST", path: "/api/v1/notifications/read-all", id: "v1.notifications.read_all", tag: "notifications",
		auth: bearer, summary: "Mark all read (→ resetNewNotificationCount)",
		replies: []reply{res[notifications.ResetNewNotificationCount](200, "the count, now 0")}},
	{method: "POST", path: "/api/v1/notifications/{id}/read", id: "v1.notifications.read", tag: "notifications",
		auth: bearer, summary: "Mark one read (→ updateNewNotificationCount)",
		replies: []reply{res[notifications.Notification](200, "the notification")}},

	// --- PubSub (pubsub/http.go, docs/pubsub.md)
	{method: "POST", path: "/api/v1/pub_subs", id: "v1.pub_subs.store", tag: "pubsub", auth: apiToken, idempotent: true,
		summary:     "Publish to an organization, event or session of the API token's organization",
		description: "Answered once the publish is committed; it is delivered after the commit to `pubsub.{org}[.{event}[.{session}]]`.",
		body:        &body{schema: publishBody}, replies: []reply{res[pubsub.Result](200, "committed")}},
	{method: "POST", path: "/api/v1/publish", id: "v1.pub_subs.store.publish", aliasOf: "POST /api/v1/pub_subs", tag: "pubsub",
		auth: apiToken, idempotent: true, summary: "Publish (the same as POST /api/v1/pub_subs: operation id v1.pub_subs.store)",
		body: &body{schema: publishBody}, replies: []reply{res[pubsub.Result](200, "committed")}},
	{method: "POST", path: "/api/v1/pubsub/room_tokens", id: "v1.pubsub.room_tokens.store", tag: "pubsub", auth: apiToken,
		summary: "A room token for a participant of a session of the API token's organization",
		body:    req[pubsub.RoomTokenRequest]("event_id", "session_id", "participant"),
		replies: []reply{res[pubsub.RoomToken](201, "the room token and the room's channels")}},
	{method: "POST", path: "/api/v1/pubsub/api_tokens", id: "v1.pubsub.api_tokens.store", tag: "pubsub", auth: bearer,
		summary: "Create an organization's API token (admin token); the token is in this answer only",
		body:    req[apiTokenInput]("organization_id"), replies: []reply{res[pubsub.APIToken](201, "the token, with `token`")}},
	{method: "GET", path: "/api/v1/pubsub/api_tokens", id: "v1.pubsub.api_tokens.index", tag: "pubsub", auth: bearer,
		summary: "List API tokens (admin token), without the tokens themselves",
		query: []Schema{{"name": "organization_id", "in": "query", "required": false,
			"description": "only this organization's", "schema": Schema{"type": "string"}}},
		replies: []reply{res[struct {
			Data []pubsub.APIToken `json:"data"`
		}](200, "the tokens")}},
	{method: "DELETE", path: "/api/v1/pubsub/api_tokens/{id}", id: "v1.pubsub.api_tokens.destroy", tag: "pubsub",
		auth: bearer, summary: "Revoke an API token (admin token); it is refused at once",
		pathTypes: map[string]Schema{"id": {"type": "string", "description": "the token's id"}},
		replies:   []reply{noContent("revoked")}},

	// --- webhook deliveries (gateway/webhooks/http.go); admin token
	{method: "GET", path: "/api/v1/webhooks/deliveries", id: "webhooks.deliveries.index", tag: "webhooks", auth: bearer,
		paged: true, summary: "List webhook deliveries (admin token)",
		query: []Schema{{"name": "status", "in": "query", "required": false,
			"schema": Schema{"type": "string", "enum": []string{webhooks.StatusPending, webhooks.StatusSent, webhooks.StatusFailed}}}},
		replies: []reply{res[domain.List[webhooks.Delivery]](200, "a page of deliveries")}},
	{method: "GET", path: "/api/v1/webhooks/deliveries/{id}", id: "webhooks.deliveries.show", tag: "webhooks", auth: bearer,
		summary: "Show a delivery with its attempts (admin token)",
		replies: []reply{res[webhooks.Delivery](200, "the delivery")}},
	{method: "POST", path: "/api/v1/webhooks/deliveries/{id}/retry", id: "webhooks.deliveries.retry", tag: "webhooks",
		auth: bearer, summary: "Send a pending or failed delivery again now (admin token)", errs: []int{409},
		replies: []reply{res[webhooks.Delivery](200, "the delivery, pending")}},

	// --- the debug console's API (console/, docs/console.md): an admin JWT
	// or a console session; the page and its event stream are excluded
	{method: "POST", path: "/console/api/session", id: "console.session.store", tag: "console", auth: bearer,
		summary: "Log in to the debug console: exchange an admin JWT or a Pusher app secret for a console session",
		description: "The credential is the body's `token` (an admin JWT, or a session to renew) or `secret` (a Pusher " +
			"app's secret), or else the bearer token. The session is a JWT that opens the console's API only, for at most " +
			"an hour and never beyond the admin JWT's own expiry.",
		body: &body{typ: reflect.TypeFor[console.LoginRequest](), optional: true}, replies: []reply{res[console.Session](201, "the session")}},
	{method: "GET", path: "/console/api/overview", id: "console.overview", tag: "console", auth: bearer,
		summary: "Connections by protocol, the relay and the outbox backlog, the webhook queue, every node",
		replies: []reply{res[console.Overview](200, "the overview")}},
	{method: "GET", path: "/console/api/channels", id: "console.channels.index", tag: "console", auth: bearer,
		summary: "Occupied channels with their subscribers (every node's in cluster mode)", errs: []int{422},
		query: []Schema{
			{"name": "q", "in": "query", "required": false, "description": "only names containing this (any case)", "schema": Schema{"type": "string"}},
			{"name": "sort", "in": "query", "required": false, "schema": Schema{"type": "string", "enum": []string{"name", "subscribers"}}},
			{"name": "limit", "in": "query", "required": false, "schema": Schema{"type": "integer", "minimum": 1, "maximum": 1000}},
		},
		replies: []reply{res[console.ChannelList](200, "the channels")}},
	{method: "GET", path: "/console/api/presence", id: "console.presence.show", tag: "console", auth: bearer,
		summary: "A channel's presence members", errs: []int{422},
		query:   []Schema{queryParam("channel", "the hub channel, as the channel list names it")},
		replies: []reply{res[console.PresenceList](200, "the members")}},
	{method: "GET", path: "/console/api/webhooks", id: "console.webhooks.index", tag: "console", auth: bearer,
		paged: true, summary: "The webhook queue (what GET /api/v1/webhooks/deliveries answers)",
		query: []Schema{{"name": "status", "in": "query", "required": false,
			"schema": Schema{"type": "string", "enum": []string{webhooks.StatusPending, webhooks.StatusSent, webhooks.StatusFailed}}}},
		replies: []reply{res[domain.List[webhooks.Delivery]](200, "a page of deliveries")}},
	{method: "POST", path: "/console/api/webhooks/{id}/retry", id: "console.webhooks.retry", tag: "console", auth: bearer,
		summary: "Send a pending or failed webhook delivery again now", errs: []int{409},
		replies: []reply{res[webhooks.Delivery](200, "the delivery, pending")}},
	{method: "POST", path: "/console/api/events", id: console.OpTestEvent, tag: "console", auth: bearer,
		summary:     "Send a test event to a channel through the outbox",
		description: "Committed like any event, with the request's `x-triggered-by`; answered after the commit.",
		body:        req[console.TestEventRequest]("channel"), replies: []reply{res[console.TestEvent](201, "committed")}},

	// --- tokens and channel authorization (gateway/centrifuge, gateway/pusher)
	{method: "POST", path: "/api/v1/realtime/token", id: "v1.realtime.token.store", tag: "realtime", auth: bearer,
		summary: "A Centrifugo connection token for the bearer (centrifuge-js getToken)",
		replies: []reply{res[RealtimeToken](200, "the connection token")}},
	{method: "POST", path: "/broadcasting/auth", id: "broadcasting.auth", tag: "realtime", auth: bearer,
		summary:     "Pusher channel authorization (laravel-echo, pusher-js channelAuthorization)",
		description: "Signs a private-, presence- or private-encrypted- channel for a socket. A PubSub room token may ask for its room's channels.",
		body:        &body{typ: reflect.TypeFor[channelAuthRequest](), required: []string{"socket_id", "channel_name"}, form: true},
		replies:     []reply{res[PusherChannelAuth](200, "the signature pusher:subscribe sends")}},
	{method: "GET", path: "/broadcasting/auth", id: "broadcasting.auth.get", aliasOf: "POST /broadcasting/auth", tag: "realtime",
		auth: bearer, summary: "Pusher channel authorization with a query string", errs: []int{422},
		query:   []Schema{queryParam("socket_id", "the socket's id (123.456)"), queryParam("channel_name", "the channel")},
		replies: []reply{res[PusherChannelAuth](200, "the signature pusher:subscribe sends")}},
	{method: "POST", path: "/pusher/user-auth", id: "pusher.user_auth", tag: "realtime", auth: bearer,
		summary: "Pusher user authentication (pusher-js userAuthentication, before pusher:signin)",
		body:    &body{typ: reflect.TypeFor[userAuthRequest](), required: []string{"socket_id"}, form: true},
		replies: []reply{res[PusherUserAuth](200, "user_data (the bearer's sub and name) signed for the socket")}},
	{method: "POST", path: "/broadcasting/user-auth", id: "broadcasting.user_auth", aliasOf: "POST /pusher/user-auth",
		tag: "realtime", auth: bearer, summary: "Pusher user authentication (Laravel Echo's path)",
		body:    &body{typ: reflect.TypeFor[userAuthRequest](), required: []string{"socket_id"}, form: true},
		replies: []reply{res[PusherUserAuth](200, "user_data signed for the socket")}},
	{method: "GET", path: "/broadcasting/user-auth", id: "broadcasting.user_auth.get", aliasOf: "POST /pusher/user-auth",
		tag: "realtime", auth: bearer, summary: "Pusher user authentication with a query string", errs: []int{422},
		query:   []Schema{queryParam("socket_id", "the socket's id (123.456)")},
		replies: []reply{res[PusherUserAuth](200, "user_data signed for the socket")}},

	// --- Centrifugo server API (gateway/centrifuge/api.go)
	centrifugoAPI("publish", "Publish to a namespace channel (canonical channels carry domain events only); the reply carries the offset and epoch the relay gave it",
		reflect.TypeFor[centrifugoPublishRequest](), []string{"channel", "data"}, Schema{"$ref": "#/components/schemas/CentrifugoPublishResult"}),
	centrifugoAPI("broadcast", "Publish one message to several channels (one outbox row)",
		reflect.TypeFor[centrifugoBroadcastRequest](), []string{"channels", "data"}, Schema{"type": "object", "required": []string{"responses"},
			"properties": map[string]any{"responses": Schema{"type": "array", "items": Schema{"type": "object", "properties": map[string]any{
				"error": Schema{"$ref": "#/components/schemas/CentrifugoError"}, "result": Schema{"$ref": "#/components/schemas/CentrifugoPublishResult"}}}}}}),
	centrifugoAPI("subscribe", "Subscribe a user's connections (on every node) to a channel from the server side",
		reflect.TypeFor[centrifugoSubscribeRequest](), []string{"user", "channel"}, Schema{"type": "object"}),
	centrifugoAPI("unsubscribe", "Unsubscribe a user's connections (on every node) from a channel (unsubscribe push, code 2000)",
		reflect.TypeFor[centrifugoUnsubscribeRequest](), []string{"user", "channel"}, Schema{"type": "object"}),
	centrifugoAPI("disconnect", "Close a user's connections on every front door and node (Centrifugo 3503 or the given code, Pusher 4009, ActionCable remote)",
		reflect.TypeFor[centrifugoDisconnectRequest](), []string{"user"}, Schema{"type": "object"}),
	centrifugoAPI("refresh", "Change when a user's Centrifugo connections expire, or expire them now (3005)",
		reflect.TypeFor[centrifugoRefreshRequest](), []string{"user"}, Schema{"type": "object"}),
	centrifugoAPI("history_remove", "Drop a channel's publications, keeping its epoch and top offset",
		reflect.TypeFor[centrifugoChannelRequest](), []string{"channel"}, Schema{"type": "object"}),
	centrifugoAPI("channels", "Centrifugo channels with subscribers on any node, by name",
		reflect.TypeFor[centrifugoChannelsRequest](), nil, Schema{"type": "object", "required": []string{"channels"},
			"properties": map[string]any{"channels": Schema{"type": "object", "additionalProperties": Schema{"type": "object",
				"required": []string{"num_clients"}, "properties": map[string]any{"num_clients": Schema{"type": "integer"}}}}}}),
	centrifugoAPI("info", "The answering node: its Centrifugo connections, users, channels and subscriptions",
		reflect.TypeFor[struct{}](), nil, Schema{"type": "object", "required": []string{"nodes"},
			"properties": map[string]any{"nodes": Schema{"type": "array", "items": Schema{"type": "object",
				"required": []string{"uid", "name", "version", "num_clients", "num_users", "num_channels", "num_subs", "uptime"},
				"properties": map[string]any{"uid": Schema{"type": "string"}, "name": Schema{"type": "string"}, "version": Schema{"type": "string"},
					"num_clients": Schema{"type": "integer"}, "num_users": Schema{"type": "integer"}, "num_channels": Schema{"type": "integer"},
					"num_subs": Schema{"type": "integer"}, "uptime": Schema{"type": "integer", "description": "seconds"}}}}}}),
	centrifugoBatch(),

	// --- ActionCable broadcast (gateway/actioncable/broadcast.go)
	{method: "POST", path: "/_broadcast", id: "anycable.broadcast", tag: "actioncable", auth: broadcastKey,
		summary: "Broadcast to a stream (a canonical channel), AnyCable's HTTP broadcaster: /cable subscribers receive data as given; the channel's Pusher and Centrifugo subscribers too",
		description: "The body is one publication or an array of up to 100 (all or nothing). `data` is AnyCable's string (JSON text " +
			"is delivered as that JSON, other text as a string) or any JSON value. A message shaped `{\"event\", \"data\"}` reaches Pusher " +
			"clients as that event and Centrifugo clients as `{\"type\", \"data\"}`; any other message as Pusher event `broadcast` and as " +
			"the Centrifugo publication's data. `meta.exclude_socket` leaves out one connection. 201 once committed to the outbox.",
		body:    &body{schema: broadcastBody},
		replies: []reply{{status: 201, description: "committed: the relay delivers it"}}},
	centrifugoAPI("presence", "The clients subscribed to a channel with presence",
		reflect.TypeFor[centrifugoChannelRequest](), []string{"channel"}, Schema{"type": "object", "required": []string{"presence"},
			"properties": map[string]any{"presence": Schema{"type": "object",
				"additionalProperties": Schema{"$ref": "#/components/schemas/CentrifugoClientInfo"}}}}),
	centrifugoAPI("presence_stats", "How many clients and users are in a channel's presence",
		reflect.TypeFor[centrifugoChannelRequest](), []string{"channel"}, Schema{"type": "object", "required": []string{"num_clients", "num_users"},
			"properties": map[string]any{"num_clients": Schema{"type": "integer"}, "num_users": Schema{"type": "integer"}}}),
	centrifugoAPI("history", "A channel's stream: publications, epoch and top offset",
		reflect.TypeFor[centrifugoChannelRequest](), []string{"channel"}, Schema{"$ref": "#/components/schemas/CentrifugoHistory"}),

	// --- health and this document
	{method: "GET", path: "/healthz", id: "healthz", tag: "health", noGuard: true, errs: []int{503},
		summary: "Liveness: the process runs and the store answers (from the background health check)",
		replies: []reply{{status: 200, description: "alive", schema: Schema{"type": "object", "required": []string{"status"},
			"properties": map[string]any{"status": Schema{"type": "string", "const": "ok"},
				"store": Schema{"type": "string", "enum": []string{"sqlite", "postgres"}}}}}}},
	{method: "GET", path: "/readyz", id: "readyz", tag: "health", noGuard: true,
		summary: "Readiness: the database (and NATS in cluster mode) answer",
		replies: []reply{{status: 200, description: "ready", schema: Schema{"$ref": "#/components/schemas/Readiness"}},
			{status: 503, description: "not ready: what is down (with Retry-After)", schema: Schema{"$ref": "#/components/schemas/Readiness"}}}},
	{method: "GET", path: Path, id: "openapi", tag: "meta", summary: "This OpenAPI document",
		replies: []reply{{status: 200, description: "the document", schema: Schema{"type": "object"}}}},
}

func queryParam(name, description string) Schema {
	return Schema{"name": name, "in": "query", "required": true, "description": description, "schema": Schema{"type": "string"}}
}

// centrifugoAPI is one method of the Centrifugo server API: POST
// /api/<method>, answered {"result": ...}, or for the protocol's own
// errors HTTP 200 {"error": {code, message}} (HTTP 400/500 with the bare
// error under X-Centrifugo-Error-Mode: transport).
func centrifugoAPI(method, summary string, in reflect.Type, required []string, result Schema) route {
	return route{method: "POST", path: "/api/" + method, id: "centrifugo." + method, tag: "centrifugo", auth: apiKey,
		summary: summary, body: &body{typ: in, required: required},
		query: []Schema{{"name": "X-Centrifugo-Error-Mode", "in": "header", "required": false,
			"description": "`transport`: protocol errors as HTTP 400 (500 for internal) with the bare error",
			"schema":      Schema{"type": "string", "enum": []string{"transport"}}}},
		replies: []reply{
			{status: 200, description: "`result`, or a protocol error (unknown channel 102, permission denied 103, ...)",
				schema: Schema{"anyOf": []any{
					Schema{"type": "object", "required": []string{"result"}, "properties": map[string]any{"result": result}},
					Schema{"$ref": "#/components/schemas/CentrifugoErrorReply"}}}},
			{status: 400, description: "a body that is not JSON (Switchboard's error body), or a protocol error under X-Centrifugo-Error-Mode: transport",
				schema: Schema{"anyOf": []any{Schema{"$ref": "#/components/schemas/ErrorBody"}, Schema{"$ref": "#/components/schemas/CentrifugoError"}}}},
			{status: 500, description: "an internal error under X-Centrifugo-Error-Mode: transport",
				schema: Schema{"$ref": "#/components/schemas/CentrifugoError"}},
		}}
}

// Bodies handlers bind into anonymous structs or unexported types: their
// JSON fields, copied here (the router test sends them).

// projectInput is domain.ProjectRoutes' body.
type projectInput struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// participantInput is chat's add-participant body.
type participantInput struct {
	MemberID domain.MemberID `json:"member_id"`
}

// apiTokenInput is pubsub's create-API-token body.
type apiTokenInput struct {
	OrganizationID string `json:"organization_id"`
	Name           string `json:"name"`
}

// channelAuthRequest is gateway/pusher's authRequest.
type channelAuthRequest struct {
	SocketID    string `json:"socket_id"`
	ChannelName string `json:"channel_name"`
}

type userAuthRequest struct {
	SocketID string `json:"socket_id"`
}

// PusherChannelAuth is gateway/pusher's authResponse.
type PusherChannelAuth struct {
	Auth         string `json:"auth"`
	ChannelData  string `json:"channel_data,omitempty"`
	SharedSecret string `json:"shared_secret,omitempty"`
}

// PusherUserAuth is gateway/pusher's userAuthResponse.
type PusherUserAuth struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// RealtimeToken is gateway/centrifuge's tokenResponse.
type RealtimeToken struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

type centrifugoPublishRequest struct {
	Channel        string          `json:"channel"`
	Data           json.RawMessage `json:"data"`
	IdempotencyKey string          `json:"idempotency_key"`
}

type centrifugoBroadcastRequest struct {
	Channels       []string        `json:"channels"`
	Data           json.RawMessage `json:"data"`
	IdempotencyKey string          `json:"idempotency_key"`
}

type centrifugoSubscribeRequest struct {
	User    string          `json:"user"`
	Channel string          `json:"channel"`
	Client  string          `json:"client"`
	Data    json.RawMessage `json:"data"`
}

type centrifugoUnsubscribeRequest struct {
	User    string `json:"user"`
	Channel string `json:"channel"`
	Client  string `json:"client"`
}

type centrifugoDisconnectRequest struct {
	User       string   `json:"user"`
	Client     string   `json:"client"`
	Whitelist  []string `json:"whitelist"`
	Disconnect *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"disconnect"`
}

type centrifugoRefreshRequest struct {
	User     string `json:"user"`
	Client   string `json:"client"`
	Expired  bool   `json:"expired"`
	ExpireAt int64  `json:"expire_at"`
}

type centrifugoChannelsRequest struct {
	Pattern string `json:"pattern"`
}

// centrifugoBatch is POST /api/batch: its reply is {"replies": [...]},
// not {"result": ...}.
func centrifugoBatch() route {
	rt := centrifugoAPI("batch", "Several server API commands in one request, run in order", nil, nil, nil)
	rt.body = &body{schema: Schema{"type": "object", "required": []string{"commands"}, "properties": map[string]any{
		"commands": Schema{"type": "array", "minItems": 1, "maxItems": 100, "items": Schema{"type": "object",
			"description": "one method: {\"publish\": {...}}, {\"disconnect\": {...}}, ...", "minProperties": 1, "maxProperties": 1}},
		"parallel": Schema{"type": "boolean", "description": "accepted; commands run in order either way"}}}}
	rt.replies[0].schema = Schema{"anyOf": []any{
		Schema{"type": "object", "required": []string{"replies"}, "properties": map[string]any{"replies": Schema{"type": "array",
			"items": Schema{"type": "object", "description": "the method's result under its name, or error"}}}},
		Schema{"$ref": "#/components/schemas/CentrifugoErrorReply"}}}
	return rt
}

// broadcastBody is the ActionCable broadcast endpoint's body: one
// publication or an array of them.
var broadcastBody = func() Schema {
	pub := Schema{"type": "object", "required": []string{"stream", "data"}, "properties": map[string]any{
		"stream": Schema{"type": "string", "description": "a canonical channel: notification-channel-42, chat-room-7-channel, dashboard.project.demo.attendees, ..."},
		"data":   Schema{"description": "a string (AnyCable's: JSON text or any text) or any JSON value but null"},
		"meta": Schema{"type": "object", "properties": map[string]any{
			"exclude_socket": Schema{"type": "string", "maxLength": 128, "description": "a connection id that must not receive it"}}},
	}}
	return Schema{"oneOf": []any{pub, Schema{"type": "array", "minItems": 1, "maxItems": 100, "items": pub}}}
}()

type centrifugoChannelRequest struct {
	Channel string `json:"channel"`
	Limit   int32  `json:"limit"`
	Since   *struct {
		Offset uint64 `json:"offset"`
		Epoch  string `json:"epoch"`
	} `json:"since"`
	Reverse bool `json:"reverse"`
}

// publishBody is pubsub.PublishBody as pubsub's Parse reads it (the Go
// type holds raw JSON, so the rules are written here).
var publishBody = Schema{"type": "object", "required": []string{"scope", "payload"}, "properties": map[string]any{
	"scope": Schema{"type": "object", "required": []string{"type"}, "properties": map[string]any{
		"type":       Schema{"type": "string", "enum": []string{domain.PubSubOrganization, domain.PubSubEvent, domain.PubSubSession}},
		"event_id":   Schema{"type": "string", "pattern": pubsubID, "description": "required for event and session"},
		"session_id": Schema{"type": "string", "pattern": pubsubID, "description": "required for session"},
	}},
	"payload": Schema{"type": "object", "required": []string{"event"}, "properties": map[string]any{
		"event": Schema{"type": "object", "required": []string{"eventName", "data"}, "properties": map[string]any{
			"eventName": Schema{"type": "string", "minLength": 1, "maxLength": 200,
				"description": "not starting with pusher: or pusher_internal:"},
			"data": Schema{"type": "object", "description": "at most SWITCHBOARD_PUBSUB_MAX_PAYLOAD bytes of JSON"},
		}},
	}},
}}

const pubsubID = "^[A-Za-z0-9_-]{1,128}$"

// requestRequired are the fields handlers require in struct types met
// inside request bodies.
var requestRequired = map[reflect.Type][]string{
	reflect.TypeFor[forms.Field]():         {"key", "label", "type"},
	reflect.TypeFor[notifications.Actor](): {"id"},
}

// fieldSchemas refine fields reflection cannot know ("pkg.Type.field").
var fieldSchemas = map[string]Schema{
	"access.ScanInput.direction":                         {"enum": []string{access.DirectionIn, access.DirectionOut}},
	"access.Scan.direction":                              {"enum": []string{access.DirectionIn, access.DirectionOut}},
	"access.Scan.reason":                                 {"description": "why the scan was denied; null when granted"},
	"forms.Field.type":                                   {"enum": []string{forms.TypeText, forms.TypeNumber, forms.TypeChoice, forms.TypeCheckbox}},
	"forms.Field.key":                                    {"pattern": "^[a-z][a-z0-9_]{0,63}$"},
	"forms.FormInput.fields":                             {"minItems": 1, "maxItems": forms.MaxFields},
	"forms.ResponseInput.answers":                        {"type": "object", "description": "answers keyed by field key"},
	"forms.Response.answers":                             {"type": "object", "description": "answers keyed by field key"},
	"games.AwardInput.reason":                            {"pattern": "^[A-Za-z0-9_.:-]{1,100}$"},
	"games.AwardInput.points":                            {"minimum": -games.MaxPoints, "maximum": games.MaxPoints, "not": Schema{"const": 0}},
	"domain.Project.slug":                                {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
	"openapi.projectInput.slug":                          {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
	"openapi.projectInput.name":                          {"minLength": 1, "maxLength": 200},
	"openapi.apiTokenInput.organization_id":              {"pattern": pubsubID},
	"pubsub.RoomTokenRequest.event_id":                   {"pattern": pubsubID},
	"pubsub.RoomTokenRequest.session_id":                 {"pattern": pubsubID},
	"pubsub.RoomTokenRequest.participant":                {"required": []string{"id"}},
	"pubsub.RoomTokenRequest.ttl":                        {"description": "lifetime in seconds; absent or 0: SWITCHBOARD_PUBSUB_ROOM_TOKEN_TTL"},
	"webhooks.Delivery.status":                           {"enum": []string{webhooks.StatusPending, webhooks.StatusSent, webhooks.StatusFailed}},
	"console.TestEventRequest.data":                      {"type": "object", "description": "the event's object (at most 10 KB); absent: a greeting"},
	"console.TestEventRequest.event":                     {"maxLength": 200, "description": "absent or empty: console-test; not pusher: or pusher_internal:"},
	"webhooks.Delivery.body":                             {"description": "the JSON body sent (or to be sent)"},
	"openapi.RealtimeToken.expires_at":                   {"format": "date-time"},
	"openapi.channelAuthRequest.socket_id":               {"pattern": `^\d+\.\d+$`},
	"openapi.userAuthRequest.socket_id":                  {"pattern": `^\d+\.\d+$`},
	"openapi.centrifugoPublishRequest.data":              {"description": "any JSON but null"},
	"openapi.centrifugoBroadcastRequest.data":            {"description": "any JSON but null"},
	"openapi.centrifugoBroadcastRequest.channels":        {"minItems": 1},
	"openapi.centrifugoPublishRequest.idempotency_key":   {"maxLength": 255, "description": "the same key on the channel within 5 minutes publishes nothing and answers the first publication's offset and epoch"},
	"openapi.centrifugoBroadcastRequest.idempotency_key": {"maxLength": 255, "description": "per channel, as publish's"},
	"openapi.centrifugoDisconnectRequest.disconnect":     {"description": "the close code (3000-4999) and reason for Centrifugo clients; default 3503 force disconnect"},
	"openapi.centrifugoRefreshRequest.expire_at":         {"description": "Unix seconds, in the future; 0 with expired false: never expire"},
	"chat.RoomPatch.pinned_message_id":                   {"type": []any{"integer", "null"}, "description": "a message of the room, or null to unpin"},
	"chat.MessageInput.rich_text_body":                   {"type": []any{"object", "null"}},
	"chat.EditInput.rich_text_body":                      {"type": []any{"object", "null"}},
}

// commonSchemas are the components written by hand.
var commonSchemas = map[string]Schema{
	"ErrorBody": {"type": "object", "required": []string{"error"}, "properties": map[string]any{
		"error": Schema{"type": "object", "required": []string{"code", "message"}, "properties": map[string]any{
			"code":    Schema{"type": "string", "description": "stable: bad_request, unauthorized, token_expired, forbidden, not_found, conflict, validation_failed, database_unavailable, ..."},
			"message": Schema{"type": "string"},
			"field":   Schema{"type": "string", "description": "the field at fault (422)"},
		}},
	}},
	"Readiness": {"type": "object", "additionalProperties": Schema{"type": "string"}, "properties": map[string]any{
		"database": Schema{"type": "string", "description": "`up`, or `down: <reason>`"},
		"broker":   Schema{"type": "string", "description": "`local`, or in cluster mode `nats connected` / `nats disconnected`"},
		"relay":    Schema{"type": "string", "description": "`running`, `standby (another node relays)`, `starting`, `retrying: ...` or `behind: ...`"},
	}},
	"CentrifugoError": {"type": "object", "required": []string{"code", "message"}, "properties": map[string]any{
		"code": Schema{"type": "integer"}, "message": Schema{"type": "string"}, "temporary": Schema{"type": "boolean"}}},
	"CentrifugoErrorReply": {"type": "object", "required": []string{"error"}, "properties": map[string]any{
		"error": Schema{"$ref": "#/components/schemas/CentrifugoError"}}},
	"CentrifugoClientInfo": {"type": "object", "required": []string{"user", "client"}, "properties": map[string]any{
		"user": Schema{"type": "string"}, "client": Schema{"type": "string"}, "conn_info": Schema{}, "chan_info": Schema{}}},
	"CentrifugoPublication": {"type": "object", "properties": map[string]any{
		"data": Schema{"description": "the published JSON"}, "info": Schema{"$ref": "#/components/schemas/CentrifugoClientInfo"},
		"offset": Schema{"type": "integer", "minimum": 0}, "tags": Schema{"type": "object", "additionalProperties": Schema{"type": "string"}}}},
	"CentrifugoPublishResult": {"type": "object", "description": "offset and epoch are absent for a channel without history (or when the relay did not answer within 3 s)",
		"properties": map[string]any{"offset": Schema{"type": "integer", "minimum": 1}, "epoch": Schema{"type": "string"}}},
	"CentrifugoHistory": {"type": "object", "required": []string{"publications", "epoch", "offset"}, "properties": map[string]any{
		"publications": Schema{"type": "array", "items": Schema{"$ref": "#/components/schemas/CentrifugoPublication"}},
		"epoch":        Schema{"type": "string"}, "offset": Schema{"type": "integer", "minimum": 0}}},
}
