package pusher

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"switchboard/domain"
)

// signatureError is the 401 of every signature problem; the message says
// which check failed (the SDKs surface the body to the developer).
func signatureError(msg string) error {
	return &domain.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
}

// stringToSign is "METHOD\nPATH\nQUERY" with QUERY = every parameter but
// auth_signature, keys lowercased and sorted, values decoded and joined
// unescaped (repeated values joined with ","), as pusher-http-node and
// pusher-http-php compute it (protocol note §8.2).
func stringToSign(method, path string, query url.Values) string {
	type kv struct{ k, v string }
	pairs := make([]kv, 0, len(query))
	for k, vs := range query {
		if k == "auth_signature" {
			continue
		}
		pairs = append(pairs, kv{strings.ToLower(k), strings.Join(vs, ",")})
	}
	// Keys equal once lowercased ("A" and "a") are ordered by value so the
	// string never depends on map order.
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// bodyMD5 is the hex MD5 of a request body.
func bodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// verifySignature checks a server API request for app: auth_key is the
// app's, auth_version 1.0, auth_timestamp within maxSkew of now, body_md5
// the body's (for a non-empty body), and auth_signature the HMAC-SHA256 of
// the string to sign, compared in constant time. path is the request path
// without the query; when it has a prefix before /apps/, the suffix is
// accepted too (SDKs behind a path prefix sign /apps/...).
func verifySignature(app *App, method, path string, query url.Values, body []byte, now time.Time) error {
	sig := query.Get("auth_signature")
	if sig == "" || query.Get("auth_key") == "" || query.Get("auth_timestamp") == "" {
		return signatureError("auth_key, auth_timestamp and auth_signature are required")
	}
	if query.Get("auth_key") != app.Key {
		return signatureError("auth_key does not belong to app " + app.ID)
	}
	if v := query.Get("auth_version"); v != "1.0" {
		return signatureError("auth_version must be 1.0")
	}
	ts, err := strconv.ParseInt(query.Get("auth_timestamp"), 10, 64)
	if err != nil {
		return signatureError("auth_timestamp must be unix seconds")
	}
	if skew := now.Unix() - ts; skew > DefaultMaxTimestampSkewSeconds || skew < -DefaultMaxTimestampSkewSeconds {
		return signatureError("Timestamp expired: Given timestamp (" + time.Unix(ts, 0).UTC().Format(time.RFC3339) +
			") not within 600s of server time (" + now.UTC().Format(time.RFC3339) + ")")
	}
	q := url.Values{}
	for k, vs := range query {
		q[k] = vs
	}
	if len(body) > 0 {
		sum := bodyMD5(body)
		if given := q.Get("body_md5"); given != "" && !strings.EqualFold(given, sum) {
			return signatureError("body_md5 does not match the request body")
		}
		// The computed digest is what the SDKs signed (they hash the same bytes).
		q["body_md5"] = []string{sum}
	}
	got := []byte(strings.ToLower(sig))
	paths := []string{path}
	if i := strings.Index(path, "/apps/"); i > 0 {
		paths = append(paths, path[i:])
	}
	for _, p := range paths {
		if hmac.Equal(got, []byte(app.signature(stringToSign(method, p, q)))) {
			return nil
		}
	}
	return signatureError("Invalid signature: the secret authentication failed")
}

// signQuery adds auth_* parameters (and body_md5) to q, as the SDKs do:
// used by tests and by tools that call the API.
func signQuery(app *App, method, path string, q url.Values, body []byte, now time.Time) url.Values {
	out := url.Values{}
	for k, vs := range q {
		out[k] = vs
	}
	out.Set("auth_key", app.Key)
	out.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	out.Set("auth_version", "1.0")
	if len(body) > 0 {
		out.Set("body_md5", bodyMD5(body))
	}
	out.Set("auth_signature", app.signature(stringToSign(method, path, out)))
	return out
}
