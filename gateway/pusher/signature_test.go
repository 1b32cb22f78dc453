package pusher

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/domain"
)

// The official vectors of protocol note §3.1 and §8.2 (key
// 278d425bdf160c739803, secret 7ad3773142a6692b25b8).
func vectorApp(t testing.TB) *App {
	t.Helper()
	a := &App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8",
		EncryptionMasterKey: "nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0="}
	a.setDefaults()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthSignatureVectors(t *testing.T) {
	a := vectorApp(t)
	cases := []struct {
		name, got, want string
	}{
		{"private", a.ChannelAuth("1234.1234", "private-foobar", ""),
			"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"},
		{"presence", a.ChannelAuth("1234.1234", "presence-foobar", `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`),
			"278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"},
		{"user", a.UserAuth("1234.1234", `{"id":"12345"}`),
			"278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %s, want %s", c.got, c.want)
			}
		})
	}
	if !a.VerifyUserAuth(cases[2].want, "1234.1234", `{"id":"12345"}`) || a.VerifyUserAuth(cases[2].want, "1234.1235", `{"id":"12345"}`) {
		t.Fatal("VerifyUserAuth must accept the vector and only for its socket")
	}
}

func TestSharedSecretVector(t *testing.T) {
	a := vectorApp(t)
	got, ok := a.SharedSecret("private-encrypted-foo")
	if !ok || got != "l8aZjyhYgVd1oAlAsuL4FkYEFvMp39OvXjZMWaFf1Is=" {
		t.Fatalf("shared secret %q %v", got, ok)
	}
	b := &App{ID: "x", Key: "k", Secret: "s"}
	b.setDefaults()
	if _, ok := b.SharedSecret("private-encrypted-foo"); ok {
		t.Fatal("an app without a master key must not derive secrets")
	}
}

func TestHTTPSignatureVectors(t *testing.T) {
	a := vectorApp(t)
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	if got := bodyMD5(body); got != "ec365a775a4cd0599faeb73354201b6f" {
		t.Fatalf("body_md5 %s", got)
	}
	if got := bodyMD5([]byte("{}")); got != "99914b932bd37a50b983c5e7c90ae93b" {
		t.Fatalf("md5({}) %s", got)
	}
	post := url.Values{"auth_key": {a.Key}, "auth_timestamp": {"1353088179"}, "auth_version": {"1.0"},
		"body_md5": {"ec365a775a4cd0599faeb73354201b6f"}}
	wantS := "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
	if s := stringToSign("POST", "/apps/3/events", post); s != wantS {
		t.Fatalf("string to sign %q", s)
	}
	get := url.Values{"auth_key": {a.Key}, "auth_timestamp": {"1353088179"}, "auth_version": {"1.0"},
		"filter_by_prefix": {"presence-"}, "info": {"user_count"}}
	at := time.Unix(1353088179, 0)
	cases := []struct {
		name, method, path string
		q                  url.Values
		body               []byte
		sig                string
	}{
		{"official POST", "POST", "/apps/3/events", post, body, "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"},
		{"GET with extra params", "GET", "/apps/3/channels", get, nil, "16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range c.q {
				q[k] = v
			}
			q.Set("auth_signature", c.sig)
			if err := verifySignature(a, c.method, c.path, q, c.body, at); err != nil {
				t.Fatalf("official vector refused: %v", err)
			}
			// The same request behind a path prefix verifies too.
			if err := verifySignature(a, c.method, "/pusher"+c.path, q, c.body, at); err != nil {
				t.Fatalf("prefixed path refused: %v", err)
			}
		})
	}
}

func TestHTTPSignatureRefusals(t *testing.T) {
	a := vectorApp(t)
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"e","channel":"c","data":"{}"}`)
	good := signQuery(a, "POST", "/apps/3/events", url.Values{}, body, now)
	if err := verifySignature(a, "POST", "/apps/3/events", good, body, now); err != nil {
		t.Fatalf("signQuery output refused: %v", err)
	}
	mutate := func(f func(q url.Values)) url.Values {
		q := url.Values{}
		for k, v := range good {
			q[k] = append([]string(nil), v...)
		}
		f(q)
		return q
	}
	wrong := &App{ID: "3", Key: a.Key, Secret: "not-the-secret"}
	cases := []struct {
		name string
		app  *App
		q    url.Values
		body []byte
		now  time.Time
		msg  string
	}{
		{"wrong secret", wrong, good, body, now, "Invalid signature"},
		{"tampered body", a, good, []byte(`{"name":"x","channel":"c","data":"{}"}`), now, "body_md5"},
		{"stale timestamp", a, good, body, now.Add(601 * time.Second), "Timestamp expired"},
		{"future timestamp", a, good, body, now.Add(-601 * time.Second), "Timestamp expired"},
		{"other key", a, mutate(func(q url.Values) { q.Set("auth_key", "nope") }), body, now, "auth_key"},
		{"no signature", a, mutate(func(q url.Values) { q.Del("auth_signature") }), body, now, "required"},
		{"bad version", a, mutate(func(q url.Values) { q.Set("auth_version", "2.0") }), body, now, "auth_version"},
		{"timestamp not a number", a, mutate(func(q url.Values) { q.Set("auth_timestamp", "soon") }), body, now, "unix seconds"},
		{"extra param not signed", a, mutate(func(q url.Values) { q.Set("info", "user_count") }), body, now, "Invalid signature"},
		{"other path", a, good, body, now, "Invalid signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/apps/3/events"
			if c.name == "other path" {
				path = "/apps/3/batch_events"
			}
			err := verifySignature(c.app, "POST", path, c.q, c.body, c.now)
			e, ok := domain.AsError(err)
			if !ok || e.Status != 401 || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %v, want a 401 mentioning %q", err, c.msg)
			}
		})
	}
	// Within the window on both sides is fine.
	for _, d := range []time.Duration{-600 * time.Second, 600 * time.Second} {
		if err := verifySignature(a, "POST", "/apps/3/events", good, body, now.Add(d)); err != nil {
			t.Fatalf("skew %v refused: %v", d, err)
		}
	}
}

// FuzzVerifySignature: no input crashes the verifier, and a request signed
// by signQuery (the SDKs' algorithm) always verifies while any change to
// its body does not.
func FuzzVerifySignature(f *testing.F) {
	f.Add("POST", "/apps/3/events", "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
		[]byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`), int64(1353088179))
	f.Add("GET", "/apps/3/channels", "filter_by_prefix=presence-&info=user_count", []byte(nil), int64(1353088179))
	f.Add("GET", "/apps/3/channels", "Name=Something else&%zz=1&auth_key=", []byte(nil), int64(0))
	f.Add("POST", "/x/apps/3/users/1/terminate_connections", "a=1&a=2&A=3", []byte("{}"), int64(-1))
	a := vectorApp(f)
	f.Fuzz(func(t *testing.T, method, path, rawQuery string, body []byte, ts int64) {
		q, _ := url.ParseQuery(rawQuery)
		now := time.Unix(1353088179, 0)
		_ = verifySignature(a, method, path, q, body, now) // must not panic
		if q.Has("auth_signature") || q.Has("auth_key") || q.Has("auth_timestamp") || q.Has("auth_version") || q.Has("body_md5") {
			return
		}
		at := time.Unix(ts%1_000_000_000, 0)
		signed := signQuery(a, method, path, q, body, at)
		if err := verifySignature(a, method, path, signed, body, at); err != nil {
			t.Fatalf("signed request refused: %v (query %q)", err, signed.Encode())
		}
		if err := verifySignature(a, method, path, signed, append(append([]byte{}, body...), 'x'), at); err == nil {
			t.Fatal("a changed body must not verify")
		}
		if ts2 := strconv.FormatInt(at.Unix()+601, 10); ts2 != "" {
			if err := verifySignature(a, method, path, signed, body, at.Add(601*time.Second)); err == nil {
				t.Fatal("a stale request must not verify")
			}
		}
	})
}
