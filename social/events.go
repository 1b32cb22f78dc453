// Package social is a project's social stream: streams, posts by the bearer,
// staff moderation, and PostCreated/PostHidden on
// dashboard.project.{slug}.social.
package social

import (
	"encoding/json"
	"strconv"

	"switchboard/domain"
)

// PostCreated is fired when a post is published.
type PostCreated struct {
	PostID    int64            `json:"post_id"`
	StreamID  int64            `json:"stream_id"`
	Content   string           `json:"content"`
	Author    Author           `json:"author"`
	CreatedAt domain.Timestamp `json:"created_at"`
}

// Name implements domain.Event.
func (PostCreated) Name() string { return "PostCreated" }

// PostHidden is fired when staff hide a post: dashboards remove it.
type PostHidden struct {
	PostID   int64            `json:"post_id"`
	StreamID int64            `json:"stream_id"`
	HiddenBy Author           `json:"hidden_by"`
	HiddenAt domain.Timestamp `json:"hidden_at"`
}

// Name implements domain.Event.
func (PostHidden) Name() string { return "PostHidden" }

// Author is who wrote a post: the bearer's sub and name claims.
type Author struct {
	ID   AuthorID `json:"id"`
	Name string   `json:"name"`
}

// AuthorID is a token subject. The seed's author ids are numbers (12345), so
// a numeric sub is written as a JSON number; any other sub stays a string
// rather than being lost.
type AuthorID string

// MarshalJSON writes numeric ids as numbers.
func (a AuthorID) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(string(a), 10, 64); err == nil && strconv.FormatInt(n, 10) == string(a) {
		return []byte(string(a)), nil
	}
	return json.Marshal(string(a))
}

// UnmarshalJSON accepts a number or a string.
func (a *AuthorID) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*a = AuthorID(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = AuthorID(s)
	return nil
}

func scope(slug string) domain.Scope {
	return domain.Scope{Project: slug, Family: domain.FamilySocial}
}
