package social_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/domain/dbtest"
	"switchboard/internal/apitest"
	"switchboard/social"
)

func setup(t *testing.T, db *domain.DB) (*apitest.API, social.Stream) {
	t.Helper()
	api := apitest.New(t, db, func(g *echo.Group) { social.Routes(g, social.NewStore(db), db) })
	var st social.Stream
	api.MustDo(http.MethodPost, "/projects/demo/social/streams", api.Admin, map[string]any{"name": "Main stage"}, http.StatusCreated, &st)
	return api, st
}

func TestPostCreatedCarriesTheBearerAsAuthor(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, st := setup(t, db)
		path := fmt.Sprintf("/projects/demo/social/streams/%d/posts", st.ID)
		var p social.Post
		// An author in the body is ignored: the bearer is the author.
		api.MustDo(http.MethodPost, path, api.User, map[string]any{"content": "Having a great time at the conference!",
			"author": map[string]any{"id": 1, "name": "Someone else"}}, http.StatusCreated, &p)
		envs := dbtest.Outbox(t, db)
		if len(envs) != 1 || envs[0].Name != "PostCreated" {
			t.Fatalf("events %+v", envs)
		}
		if ch := envs[0].Scope.ChannelNames(); len(ch) != 1 || ch[0] != "dashboard.project.demo.social" {
			t.Fatalf("routed to %v", ch)
		}
		var got map[string]any
		if err := json.Unmarshal(envs[0].Data, &got); err != nil {
			t.Fatal(err)
		}
		// The seed's author id is a number; the test user's sub is "12345".
		want := fmt.Sprintf(`map[author:map[id:12345 name:Jane Smith] content:Having a great time at the conference! created_at:%s post_id:%d stream_id:%d x-triggered-by:map[operation_id:v1.project.social.posts.store request_id:%s]]`,
			p.CreatedAt.Format("2006-01-02T15:04:05Z"), p.ID, st.ID, envs[0].TriggeredBy.RequestID)
		if fmt.Sprint(got) != want {
			t.Fatalf("PostCreated data\n got %v\nwant %s", got, want)
		}
		if id, ok := got["author"].(map[string]any)["id"].(float64); !ok || id != 12345 {
			t.Fatalf("author.id is not the number 12345: %s", envs[0].Data)
		}
	}, social.Migrations())
}

func TestPostsNewestFirstAndStaffHide(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, st := setup(t, db)
		path := fmt.Sprintf("/projects/demo/social/streams/%d/posts", st.ID)
		var ids []int64
		for i := 0; i < 3; i++ {
			var p social.Post
			api.MustDo(http.MethodPost, path, api.User, map[string]any{"content": fmt.Sprintf("post %d", i)}, http.StatusCreated, &p)
			ids = append(ids, p.ID)
		}
		var page1, page2 domain.List[social.Post]
		api.MustDo(http.MethodGet, path+"?limit=2", api.User, nil, http.StatusOK, &page1)
		api.MustDo(http.MethodGet, path+"?limit=2&cursor="+page1.NextCursor, api.User, nil, http.StatusOK, &page2)
		got := append(page1.Data, page2.Data...)
		if len(got) != 3 || got[0].ID != ids[2] || got[1].ID != ids[1] || got[2].ID != ids[0] || page2.NextCursor != "" {
			t.Fatalf("posts not newest first: %+v", got)
		}

		hide := fmt.Sprintf("%s/%d/hide", path, ids[1])
		if r := api.Do(http.MethodPost, hide, api.User, nil); r.Status != http.StatusForbidden {
			t.Fatalf("attendee hid a post: %d %s", r.Status, r.Body)
		}
		var hidden social.Post
		api.MustDo(http.MethodPost, hide, api.Admin, nil, http.StatusOK, &hidden)
		if !hidden.Hidden || hidden.HiddenAt == nil {
			t.Fatalf("hide answered %+v", hidden)
		}
		api.MustDo(http.MethodPost, hide, api.Admin, nil, http.StatusOK, nil) // again: no new event
		envs := dbtest.Outbox(t, db)
		if len(envs) != 4 || envs[3].Name != "PostHidden" || envs[3].TriggeredBy.OperationID != "v1.project.social.posts.hide" {
			t.Fatalf("events after hiding twice: %d, last %+v", len(envs), envs[len(envs)-1])
		}
		var ev social.PostHidden
		if err := json.Unmarshal(envs[3].Data, &ev); err != nil || ev.PostID != ids[1] || ev.StreamID != st.ID || ev.HiddenBy.ID != "1" {
			t.Fatalf("PostHidden %s (%v)", envs[3].Data, err)
		}
		var visible, all domain.List[social.Post]
		api.MustDo(http.MethodGet, path, api.User, nil, http.StatusOK, &visible)
		api.MustDo(http.MethodGet, path, api.Admin, nil, http.StatusOK, &all)
		if len(visible.Data) != 2 || len(all.Data) != 3 || !all.Data[1].Hidden {
			t.Fatalf("visible %d posts (want 2), staff %d (want 3)", len(visible.Data), len(all.Data))
		}
	}, social.Migrations())
}

func TestSocialErrorsWriteNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, st := setup(t, db)
		path := fmt.Sprintf("/projects/demo/social/streams/%d/posts", st.ID)
		long := make([]byte, social.MaxContent+1)
		for i := range long {
			long[i] = 'a'
		}
		for _, tc := range []struct {
			name   string
			method string
			path   string
			token  string
			body   any
			status int
			field  string
		}{
			{"empty content", http.MethodPost, path, api.User, map[string]any{"content": "  "}, 422, "content"},
			{"too long", http.MethodPost, path, api.User, map[string]any{"content": string(long)}, 422, "content"},
			{"unknown stream", http.MethodPost, fmt.Sprintf("/projects/demo/social/streams/%d/posts", st.ID+9), api.User, map[string]any{"content": "x"}, 404, ""},
			{"unknown post", http.MethodPost, path + "/999/hide", api.Admin, nil, 404, ""},
			{"stream by attendee", http.MethodPost, "/projects/demo/social/streams", api.User, map[string]any{"name": "x"}, 403, ""},
			{"stream without name", http.MethodPost, "/projects/demo/social/streams", api.Admin, map[string]any{}, 422, "name"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := api.Do(tc.method, tc.path, tc.token, tc.body)
				if r.Status != tc.status || r.Error().Field != tc.field {
					t.Fatalf("status %d field %q, want %d %q: %s", r.Status, r.Error().Field, tc.status, tc.field, r.Body)
				}
			})
		}
		if c := dbtest.Count(t, db, "social_posts"); c != 0 {
			t.Fatalf("%d posts written", c)
		}
		if c := dbtest.Count(t, db, "social_streams"); c != 1 {
			t.Fatalf("%d streams, want 1", c)
		}
		if envs := dbtest.Outbox(t, db); len(envs) != 0 {
			t.Fatalf("%d events emitted", len(envs))
		}
	}, social.Migrations())
}

func TestRetriedPostWithSameKeyPostsOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		api, st := setup(t, db)
		path := fmt.Sprintf("/projects/demo/social/streams/%d/posts", st.ID)
		a := api.MustDo(http.MethodPost, path, api.User, map[string]any{"content": "hi"}, http.StatusCreated, nil, "Idempotency-Key", "p1")
		b := api.MustDo(http.MethodPost, path, api.User, map[string]any{"content": "hi"}, http.StatusCreated, nil, "Idempotency-Key", "p1")
		if string(a.Body) != string(b.Body) || dbtest.Count(t, db, "social_posts") != 1 || len(dbtest.Outbox(t, db)) != 1 {
			t.Fatalf("retry was not idempotent: %s / %s", a.Body, b.Body)
		}
	}, social.Migrations())
}

func TestAuthorIDEncoding(t *testing.T) {
	for _, tc := range []struct{ id, want string }{{"12345", `12345`}, {"0042", `"0042"`}, {"abc", `"abc"`}, {"-1", `-1`}} {
		b, err := json.Marshal(social.AuthorID(tc.id))
		if err != nil || string(b) != tc.want {
			t.Errorf("AuthorID(%q) = %s (%v), want %s", tc.id, b, err, tc.want)
		}
		var back social.AuthorID
		if err := json.Unmarshal(b, &back); err != nil || string(back) != tc.id {
			t.Errorf("round trip of %q gave %q (%v)", tc.id, back, err)
		}
	}
}
