package domain

import (
	"context"
	"encoding/base64"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Page is the pagination of every list endpoint: ?limit= (1..100, default
// 50) and an opaque ?cursor= from the previous page's next_cursor.
type Page struct {
	Limit int
	// After is the decoded cursor: the sort key of the last item seen, or 0.
	After int64
}

// PageOf parses ?limit= and ?cursor=.
func PageOf(c echo.Context) (Page, error) {
	p := Page{Limit: 50}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return Page{}, Invalid("limit", "must be an integer from 1 to 100")
		}
		p.Limit = n
	}
	if s := c.QueryParam("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return Page{}, Invalid("cursor", "is not a cursor this API issued")
		}
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil || n < 0 {
			return Page{}, Invalid("cursor", "is not a cursor this API issued")
		}
		p.After = n
	}
	return p, nil
}

// Cursor encodes a sort key as next_cursor.
func Cursor(key int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(key, 10)))
}

// List is the body of every list response.
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// NewList builds a List from up to limit+1 fetched items: the extra item,
// when present, only says that another page exists.
func NewList[T any](items []T, limit int, key func(T) int64) List[T] {
	l := List[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(items) > limit {
		l.Data = items[:limit]
		l.NextCursor = Cursor(key(items[limit-1]))
	}
	return l
}

// IDParam reads a positive integer path parameter; anything else is a 404
// for what (an id that can't exist is simply not found).
func IDParam(c echo.Context, name, what string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id < 1 {
		return 0, NotFound("%s %q not found", what, c.Param(name))
	}
	return id, nil
}

// Scanner is a row being read: *sql.Row and *sql.Rows both are.
type Scanner interface{ Scan(dest ...any) error }

// QueryList runs a page query, which must return up to page.Limit+1 rows
// in cursor order, scans each row and builds the List: the one loop every
// list endpoint needs.
func QueryList[T any](ctx context.Context, q Querier, page Page, scan func(Scanner) (T, error), key func(T) int64,
	query string, args ...any) (List[T], error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return List[T]{}, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return List[T]{}, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return List[T]{}, err
	}
	return NewList(out, page.Limit, key), nil
}
