package domain

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// Text that PostgreSQL cannot store is refused at the door, the same way on
// both stores. PostgreSQL's text (and jsonb) cannot hold a NUL character and
// rejects invalid UTF-8 ("invalid byte sequence for encoding UTF8"), while
// SQLite stores both. Left to the database, the same request would be a 500
// on PostgreSQL and a 2xx on SQLite; checked here, it is a 422 naming the
// field on both, before anything is written.
//
// JSON bodies cannot carry invalid UTF-8 into a handler (encoding/json turns
// it into U+FFFD), and a raw NUL byte inside a JSON string is malformed JSON
// (400); the only way a NUL reaches a handler is the escape \u0000, which is
// what Bind looks for. URL parameters can carry both (%00, %FF), so the
// textParams middleware checks them.

// nulEscape is the one JSON spelling of NUL: JSON allows only a lowercase
// "\u" and the hex digits "0000" have no case, so there is no other form.
var nulEscape = []byte(`\u0000`)

// hasNULEscape reports whether the JSON text b holds a \u0000 escape. It is
// the cheap test every body goes through: only bodies that pass it are
// walked to name the field. A match preceded by an odd number of
// backslashes is not an escape: in `\\u0000` the first backslash escapes the
// second, and "u0000" is plain text.
func hasNULEscape(b []byte) bool {
	for off := 0; ; {
		i := bytes.Index(b[off:], nulEscape)
		if i < 0 {
			return false
		}
		i += off
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		// b[i+1] is the 'u', which ends any run of backslashes, so the
		// search may resume right after the match's backslash.
		off = i + 1
	}
}

// nulField names the first string of the JSON value b (in document order,
// keys included) that holds a NUL character, or reports false. b must be
// valid JSON (Bind has checked its syntax).
//
// The name is the path the validators of the modules already use: object
// members joined with "." and array elements as "[i]", so a NUL in the label
// of the third form field is "fields[2].label", one in a form answer is
// "answers.comment", one in a top-level field is just "first_name". A NUL in
// a member's name names that member, with the NUL spelled \u0000 so the
// field is printable. The whole body, when it is itself a string, is "$".
// Keys holding "." or "[" make the path ambiguous; they are rare in request
// bodies and the path still leads a human to the spot.
func nulField(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	// Numbers stay text: a json.RawMessage field may hold 1e400, which
	// float64 cannot, and the walk must not stop on it.
	dec.UseNumber()
	field, found, _ := walkNUL(dec, "")
	return field, found
}

// walkNUL reads one JSON value from dec. Recursion is bounded by
// encoding/json's own nesting limit (10000), which Bind's syntax check
// enforced before the walk runs.
func walkNUL(dec *json.Decoder, path string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	switch t := tok.(type) {
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			if path == "" {
				return "$", true, nil
			}
			return path, true, nil
		}
	case json.Delim:
		switch t {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return "", false, err
				}
				key, _ := kt.(string)
				p := key
				if path != "" {
					p = path + "." + key
				}
				if strings.IndexByte(key, 0) >= 0 {
					return printable(p), true, nil
				}
				if f, ok, err := walkNUL(dec, p); ok || err != nil {
					return f, ok, err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if f, ok, err := walkNUL(dec, path+"["+strconv.Itoa(i)+"]"); ok || err != nil {
					return f, ok, err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return "", false, err
		}
	}
	return "", false, nil
}

// printable spells NUL as \u0000 and invalid UTF-8 as U+FFFD, so a name
// taken from the request can go into an error body and a log line.
func printable(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", `\u0000`), "\uFFFD")
}

// badText is the rule for one URL parameter: what is wrong with v, or "".
func badText(v string) string {
	if strings.IndexByte(v, 0) >= 0 {
		return "must not contain NUL characters"
	}
	if !utf8.ValidString(v) {
		return "must be valid UTF-8"
	}
	return ""
}

// checkText is badText as a 422 naming field.
func checkText(field, v string) error {
	if bad := badText(v); bad != "" {
		return Invalid(printable(field), "%s", bad)
	}
	return nil
}

// textParams refuses path and query parameters holding a NUL character or
// invalid UTF-8 with a 422 naming the parameter (see the comment at the top
// of this file for why). NewEcho installs it, so it runs for every route
// before the route's own middleware: Idempotent stores the request path in
// a text column before the handler runs, so checking in the handler would be
// too late. Running before Authn lets an unauthenticated caller see a 422
// instead of a 401, which tells them nothing: the check reads only the
// request itself.
func textParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := checkParams(c); err != nil {
			return err
		}
		return next(c)
	}
}

func checkParams(c echo.Context) error {
	r := c.Request()
	for _, name := range c.ParamNames() {
		v := c.Param(name)
		if err := checkText(name, v); err != nil {
			return err
		}
		// With an escaped "/" (%2F) in the path, echo routes on the raw
		// path and hands out parameters still escaped: "%00" is then three
		// harmless characters to the handler, but the decoded path (which
		// Idempotent stores) holds the NUL. Name the parameter it came in.
		if r.URL.RawPath != "" {
			if u, err := url.PathUnescape(v); err == nil {
				if err := checkText(name, u); err != nil {
					return err
				}
			}
		}
	}
	// What no parameter explains: a route without parameters, or no route.
	if err := checkText("path", r.URL.Path); err != nil {
		return err
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	q := c.QueryParams()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	// Sorted, so the field named is the same for the same request.
	slices.Sort(keys)
	for _, k := range keys {
		if bad := badText(k); bad != "" {
			return Invalid(printable(k), "the parameter's name %s", bad)
		}
		for _, v := range q[k] {
			if err := checkText(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}
