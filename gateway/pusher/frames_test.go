package pusher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/gateway"
)

func TestDecodeFrame(t *testing.T) {
	cases := []struct {
		raw            string
		ok             bool
		event, channel string
		data           string
	}{
		{`{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}`, true, "pusher:subscribe", "", `{"auth":"","channel":"my-channel"}`},
		{`{"event":"client-typing","data":{"name":"Taylor"},"channel":"presence-chat.1"}`, true, "client-typing", "presence-chat.1", `{"name":"Taylor"}`},
		{` {"event":"pusher:ping","data":null} `, true, "pusher:ping", "", ""},
		{`{"event":"pusher:ping"}`, true, "pusher:ping", "", ""},
		{`{"event":""}`, false, "", "", ""},
		{`{"event":1}`, false, "", "", ""},
		{`{"event":"x","channel":7}`, false, "", "", ""},
		{`["event"]`, false, "", "", ""},
		{`"{\"event\":\"x\"}"`, false, "", "", ""},
		{`{"event":"` + strings.Repeat("a", 201) + `"}`, false, "", "", ""},
		{`{"event":"x"`, false, "", "", ""},
		{``, false, "", "", ""},
	}
	for _, c := range cases {
		f, err := decodeFrame([]byte(c.raw))
		if (err == nil) != c.ok {
			t.Fatalf("%q: err %v, want ok=%v", c.raw, err, c.ok)
		}
		if c.ok && (f.Event != c.event || f.Channel != c.channel || string(f.Data) != c.data) {
			t.Fatalf("%q: got %+v data %s", c.raw, f, f.Data)
		}
	}
}

// FuzzDecodeFrame: the client frame decoder never panics, and what it
// accepts is a usable frame whose data (when present) is valid JSON.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}`,
		`{"event":"pusher:subscribe","data":"{\"channel\":\"private-x\",\"auth\":\"k:s\"}"}`,
		`{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}`,
		`{"event":"client-typing","data":{"name":"Taylor"},"channel":"presence-chat.1"}`,
		`{"event":"pusher:ping","data":{}}`,
		`{"event":null}`, `{}`, `[]`, `"x"`, `{"event":"a","data":`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := decodeFrame(raw)
		if err != nil {
			return
		}
		if fr.Event == "" || len(fr.Event) > maxFrameEventLength {
			t.Fatalf("accepted event %q", fr.Event)
		}
		if len(fr.Data) > 0 && !json.Valid(fr.Data) {
			t.Fatalf("accepted invalid data %q", fr.Data)
		}
		// Every decoder downstream of it must survive what it accepts.
		var sd subscribeData
		_ = decodeData(fr.Data, &sd)
		var si signinData
		_ = decodeData(fr.Data, &si)
		_ = classify(fr.Channel)
		_, _ = validChannelName(fr.Channel, 200)
		_, _ = parseMember(sd.ChannelData)
	})
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		want chanInfo
	}{
		{"my-channel", chanInfo{}},
		{"cache-x", chanInfo{cache: true}},
		{"xcache-y", chanInfo{}},
		{"private-x", chanInfo{private: true}},
		{"foo-private-bar", chanInfo{}},
		{"private-cache-x", chanInfo{private: true, cache: true}},
		{"private-encrypted-x", chanInfo{private: true, encrypted: true}},
		{"private-encrypted-cache-x", chanInfo{private: true, encrypted: true, cache: true}},
		{"presence-x", chanInfo{private: true, presence: true}},
		{"presence-cache-x", chanInfo{private: true, presence: true, cache: true}},
		{"#server-to-user-1", chanInfo{user: true}},
	}
	for _, c := range cases {
		if got := classify(c.name); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestHubChannel(t *testing.T) {
	def := &App{ID: "a", canonical: true}
	other := &App{ID: "b"}
	cases := []struct {
		app        *App
		name, want string
	}{
		{def, "private-dashboard.project.demo.attendees", "dashboard.project.demo.attendees"},
		{def, "presence-dashboard.project.demo", "dashboard.project.demo"},
		{def, "private-dashboard.project.demo", "pusher:a:private-dashboard.project.demo"},
		{def, "presence-chat-room-7-channel", "chat-room-7-channel"},
		{def, "private-encrypted-dashboard.project.demo.access", "pusher:a:private-encrypted-dashboard.project.demo.access"},
		{def, "private-chat.7", "pusher:a:private-chat.7"},
		{def, "cache-x", "pusher:a:cache-x"},
		// Other apps never reach Switchboard's channels.
		{other, "private-dashboard.project.demo.attendees", "pusher:b:private-dashboard.project.demo.attendees"},
	}
	for _, c := range cases {
		if got := hubChannel(c.app, c.name); got != c.want {
			t.Errorf("%s/%s: %s, want %s", c.app.ID, c.name, got, c.want)
		}
	}
	if app, name, ok := splitHub("pusher:a:#server-to-user-1"); !ok || app != "a" || name != "#server-to-user-1" {
		t.Fatalf("splitHub %s %s %v", app, name, ok)
	}
}

func TestValidChannelName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"foo-bar_1234@=,.;", true},
		{"#server-to-user-1", true},
		{"#other", false},
		{"white space", false},
		{"sl/ash", false},
		{"", false},
		{strings.Repeat("a", 200), true},
		{strings.Repeat("a", 201), false},
	}
	for _, c := range cases {
		if ok, _ := validChannelName(c.name, 200); ok != c.ok {
			t.Errorf("%q: %v, want %v", c.name, ok, c.ok)
		}
	}
}

func TestParseMember(t *testing.T) {
	cases := []struct {
		cd, id, info string
		ok           bool
	}{
		{`{"user_id":"1","user_info":{"name":"Taylor"}}`, "1", `{"name":"Taylor"}`, true},
		{`{"user_id":10,"user_info":{"name":"Mr. Channels"}}`, "10", `{"name":"Mr. Channels"}`, true},
		{`{"user_id":"1"}`, "1", "", true},
		{`{"user_id":"1","user_info":null}`, "1", "", true},
		{`{"user_id":""}`, "", "", false},
		{`{"user_id":true}`, "", "", false},
		{`{"user_info":{}}`, "", "", false},
		{`not json`, "", "", false},
		{`{"user_id":"` + strings.Repeat("x", 129) + `"}`, "", "", false},
	}
	for _, c := range cases {
		m, err := parseMember(c.cd)
		if (err == nil) != c.ok || (c.ok && (m.UserID != c.id || string(m.Info) != c.info)) {
			t.Errorf("%s: %+v %v", c.cd, m, err)
		}
	}
}

func TestPresenceDataDedupedShape(t *testing.T) {
	p := gateway.NewPresence()
	p.Join("c", "s1", gateway.Member{UserID: "1", Info: json.RawMessage(`{"name":"A"}`)})
	p.Join("c", "s2", gateway.Member{UserID: "1", Info: json.RawMessage(`{"name":"A"}`)})
	p.Join("c", "s3", gateway.Member{UserID: "2"})
	var got struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(presenceData(p.Members("c"))), &got); err != nil {
		t.Fatal(err)
	}
	if got.Presence.Count != 2 || len(got.Presence.IDs) != 2 || string(got.Presence.Hash["1"]) != `{"name":"A"}` || string(got.Presence.Hash["2"]) != "null" {
		t.Fatalf("presence data %+v", got.Presence)
	}
}

func TestClientEventRate(t *testing.T) {
	app := &App{ID: "a", Key: "k", Secret: "s"}
	app.setDefaults()
	c := &conn{app: app}
	t0 := time.Unix(100, 0)
	for i := 0; i < 10; i++ {
		if !c.allowClientEvent(t0.Add(time.Duration(i) * 50 * time.Millisecond)) {
			t.Fatalf("event %d refused", i+1)
		}
	}
	if c.allowClientEvent(t0.Add(900 * time.Millisecond)) {
		t.Fatal("the 11th event within a second must be refused")
	}
	if !c.allowClientEvent(t0.Add(1000 * time.Millisecond)) {
		t.Fatal("a second after the first event, one more is fine")
	}
	if c.allowClientEvent(t0.Add(1010 * time.Millisecond)) {
		t.Fatal("the window slides: the 2nd event (t=50ms) is still within the second")
	}
}

func TestClientEventsAllowed(t *testing.T) {
	cases := map[string]bool{
		"private-dashboard.project.demo.attendees": false,
		"presence-dashboard.project.demo":          false,
		"private-notification-channel-42":          false,
		"private-chat-room-7-channel":              true,
		"presence-chat-room-7-channel":             true,
		"private-chat.lobby":                       true,
		"private-pubsub.acme.ev1.s1":               true,
		"presence-pubsub.acme.ev1.s1":              true,
		"private-pubsub.acme.ev1":                  false,
		"private-pubsub.acme":                      false,
	}
	for name, want := range cases {
		if got := clientEventsAllowed(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

func TestParseApps(t *testing.T) {
	yamlDoc := `
apps:
  - id: one
    key: key-one
    secret: s1
    encryption_master_key: nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=
    client_events: false
    subscription_count: true
    activity_timeout: 60
    cache_ttl: 120
    max_connections_per_user: 5
    auth_prefixes: [private-team.]
  - id: two
    key: key-two
    secret: s2
`
	jsonDoc := `{"apps":[{"id":"one","key":"key-one","secret":"s1","encryption_master_key":"nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=","client_events":false,"subscription_count":true,"activity_timeout":60,"cache_ttl":120,"max_connections_per_user":5,"auth_prefixes":["private-team."]},{"id":"two","key":"key-two","secret":"s2"}]}`
	dir := t.TempDir()
	for name, doc := range map[string]string{"apps.yaml": yamlDoc, "apps.json": jsonDoc, "apps.conf": jsonDoc} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			apps, err := LoadApps(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(apps) != 2 {
				t.Fatalf("%d apps", len(apps))
			}
			a := apps[0]
			a.setDefaults()
			if err := a.Validate(); err != nil {
				t.Fatal(err)
			}
			if a.clientEventsOn() || !a.SubscriptionCount || a.ActivityTimeout != time.Minute || a.CacheTTL != 2*time.Minute ||
				a.MaxConnectionsPerUser != 5 || a.MaxSubscriptionsPerConnection != 100 || len(a.masterKey) != 32 ||
				!a.mayAuthPrefix("private-team.x") || a.mayAuthPrefix("private-chat.x") {
				t.Fatalf("app one %+v", a)
			}
			b := apps[1]
			b.setDefaults()
			if !b.clientEventsOn() || b.CacheTTL != 30*time.Minute || !b.mayAuthPrefix("presence-chat.lobby") {
				t.Fatalf("app two defaults %+v", b)
			}
		})
	}
	bad := []struct{ doc, ext, msg string }{
		{`apps: [{id: a, key: k, secret: s, max_conections_per_user: 3}]`, ".yaml", "max_conections_per_user"},
		{`{"apps":[{"id":"a","key":"k","secret":"s","typo":1}]}`, ".json", "typo"},
		{`apps: []`, ".yaml", "no apps"},
		{`{`, ".json", "json"},
	}
	for _, b := range bad {
		if _, err := ParseApps([]byte(b.doc), b.ext); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%s: %v, want an error about %q", b.doc, err, b.msg)
		}
	}
	inv := &App{ID: "a", Key: "k", Secret: "s", EncryptionMasterKey: "c2hvcnQ=", MaxBatchSize: -1}
	inv.setDefaults()
	if err := inv.Validate(); err == nil || !strings.Contains(err.Error(), "32 bytes") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("validate: %v", err)
	}
}
