package centrifuge_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"switchboard/gateway/centrifuge"
)

func TestDecodeCommands(t *testing.T) {
	for _, tc := range []struct {
		name    string
		frame   string
		max     int
		ids     []uint32 // ids of the decoded commands
		wantErr error
	}{
		{name: "connect", frame: `{"id":1,"connect":{"token":"t","name":"js"}}`, ids: []uint32{1}},
		{name: "batch of three as centrifuge-js joins them",
			frame: `{"id":2,"subscribe":{"channel":"voice:calls","flag":1}}` + "\n" +
				`{"id":3,"presence":{"channel":"presence:online"}}` + "\n" +
				`{"id":4,"history":{"channel":"voice:calls","limit":10,"since":{"offset":3,"epoch":"e"}}}`,
			ids: []uint32{2, 3, 4}},
		{name: "one trailing newline is tolerated", frame: `{"id":5,"unsubscribe":{"channel":"c"}}` + "\n", ids: []uint32{5}},
		{name: "pong", frame: `{}`, ids: []uint32{0}},
		{name: "unknown fields are ignored", frame: `{"id":6,"subscribe":{"channel":"c","tf":{"op":"eq"},"future":[1,2]}}`, ids: []uint32{6}},
		{name: "empty frame", frame: ``, wantErr: centrifuge.ErrEmptyFrame},
		{name: "whitespace only", frame: " \n ", wantErr: centrifuge.ErrEmptyFrame},
		{name: "empty line inside a batch", frame: `{"id":1,"ping":{}}` + "\n\n" + `{"id":2,"ping":{}}`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "leading newline", frame: "\n" + `{"id":1,"ping":{}}`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "not JSON", frame: `hello`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "truncated JSON", frame: `{"id":1,"connect":{"token":`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "second command malformed", frame: `{"id":1,"ping":{}}` + "\n" + `{"id":`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "array instead of object", frame: `[1,2,3]`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "wrong type for id", frame: `{"id":"one","ping":{}}`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "negative id", frame: `{"id":-1,"ping":{}}`, wantErr: centrifuge.ErrMalformedFrame},
		{name: "oversized frame", frame: `{"id":1,"publish":{"channel":"c","data":"` + strings.Repeat("x", 100) + `"}}`, max: 64,
			wantErr: centrifuge.ErrFrameTooLarge},
		{name: "default limit is 64 KB", frame: `{"id":1,"publish":{"channel":"c","data":"` + strings.Repeat("x", 70<<10) + `"}}`,
			wantErr: centrifuge.ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := centrifuge.DecodeCommands([]byte(tc.frame), tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if cmds != nil {
					t.Fatalf("commands returned with an error: %v", cmds)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(cmds) != len(tc.ids) {
				t.Fatalf("got %d commands, want %d", len(cmds), len(tc.ids))
			}
			for i, c := range cmds {
				if c.Id != tc.ids[i] {
					t.Errorf("command %d: id %d, want %d", i, c.Id, tc.ids[i])
				}
			}
		})
	}
}

func TestDecodeCommandsFields(t *testing.T) {
	cmds, err := centrifuge.DecodeCommands([]byte(`{"id":2,"subscribe":{"channel":"voice:calls","recover":true,"offset":12,"epoch":"qFhv","flag":1}}`+"\n"+
		`{"id":3,"publish":{"channel":"chat:1","data":{"text":"hi\nthere"}}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	s := cmds[0].Subscribe
	if s == nil || s.Channel != "voice:calls" || !s.Recover || s.Offset != 12 || s.Epoch != "qFhv" || s.Flag != 1 {
		t.Fatalf("subscribe = %+v", s)
	}
	p := cmds[1].Publish
	if p == nil || p.Channel != "chat:1" || !bytes.Equal(p.Data, []byte(`{"text":"hi\nthere"}`)) {
		t.Fatalf("publish = %+v", p)
	}
}

// FuzzDecodeCommands: no input may panic, and a frame that decodes yields
// exactly one command per line. The seed corpus runs in plain `go test`.
func FuzzDecodeCommands(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"id":1,"connect":{"token":"eyJ.x.y","name":"js","version":"5.8.0","subs":{"c":{"recover":true,"offset":3,"epoch":"e"}}}}`,
		`{"id":2,"subscribe":{"channel":"voice:calls","flag":1}}` + "\n" + `{"id":3,"presence_stats":{"channel":"presence:online"}}`,
		`{"id":4,"history":{"channel":"c","limit":-1,"reverse":true,"since":{"offset":1}}}` + "\n",
		`{"id":5,"publish":{"channel":"c","data":{"a":[1,{"b":null}]}}}`,
		`{"id":6,"refresh":{"token":"t"}}`, `{"id":7,"sub_refresh":{"channel":"c","token":"t"}}`,
		`{"send":{"data":"x"}}`, `{"id":8,"rpc":{"method":"m","data":[]}}`,
		"", "\n", "\n\n", `{"id":`, `[]`, `null`, `{"id":1e99}`, `{"id":1,"connect":{"data":{"deep":[[[[[[[[[[[[]]]]]]]]]]]]}}}`,
		"{\"id\":1,\"subscribe\":{\"channel\":\"\xff\xfe\"}}", `{"id":1,"connect":{"token":"\u0000"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmds, err := centrifuge.DecodeCommands(frame, 4096)
		if err != nil {
			if cmds != nil {
				t.Fatalf("commands with error %v", err)
			}
			return
		}
		lines := bytes.Count(bytes.TrimSuffix(frame, []byte("\n")), []byte("\n")) + 1
		if len(cmds) != lines {
			t.Fatalf("%d commands from %d lines in %q", len(cmds), lines, frame)
		}
		for _, c := range cmds {
			if c == nil {
				t.Fatal("nil command")
			}
		}
	})
}
