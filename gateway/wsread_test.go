package gateway

import (
	"fmt"
	"slices"
	"testing"
)

// recSink records what frameParser reports, as text.
type recSink struct{ got []string }

func (r *recSink) message(d []byte) bool { r.got = append(r.got, "msg "+string(d)); return true }
func (r *recSink) ping(p []byte)         { r.got = append(r.got, "ping "+string(p)) }
func (r *recSink) pong()                 { r.got = append(r.got, "pong") }
func (r *recSink) closed(code int, text string) {
	r.got = append(r.got, fmt.Sprint("close ", code, " ", text))
}
func (r *recSink) protocolError(reason string) { r.got = append(r.got, "error "+reason) }
func (r *recSink) tooBig()                     { r.got = append(r.got, "too big") }

// parseSplit feeds b to a parser in pieces cut at the given offsets, the
// way reads deliver it, keeping unconsumed bytes as pollConn does.
func parseSplit(b []byte, limit int, cuts []int) []string {
	p := frameParser{limit: limit}
	s := &recSink{}
	var pending []byte
	prev := 0
	for _, c := range append(cuts, len(b)) {
		if c < prev || c > len(b) {
			continue
		}
		pending = append(pending, b[prev:c]...)
		prev = c
		n, st := p.feed(pending, s)
		pending = append([]byte(nil), pending[n:]...)
		if st == feedStop {
			s.got = append(s.got, "stop")
			break
		}
	}
	return s.got
}

func TestFrameParser(t *testing.T) {
	text := func(fin bool, p string) []byte {
		b0 := byte(0x01)
		if fin {
			b0 |= 0x80
		}
		return rawFrame(b0, true, []byte(p))
	}
	cat := func(fs ...[]byte) []byte { return slices.Concat(fs...) }
	cases := []struct {
		name string
		in   []byte
		want []string
	}{
		{"one message", text(true, "hello"), []string{"msg hello"}},
		{"fragments around a ping", cat(text(false, "a"), rawFrame(0x89, true, []byte("p")), rawFrame(0x80, true, []byte("b"))),
			[]string{"ping p", "msg ab"}},
		{"pong", rawFrame(0x8A, true, nil), []string{"pong"}},
		{"close with code", rawFrame(0x88, true, []byte{0x03, 0xe8, 'o', 'k'}), []string{"close 1000 ok", "stop"}},
		{"close without code", rawFrame(0x88, true, nil), []string{"close 1005 ", "stop"}},
		{"reserved close code", rawFrame(0x88, true, []byte{0x03, 0xed}), []string{"error bad close code 1005", "stop"}},
		{"unmasked", rawFrame(0x81, false, []byte("x")), []string{"error bad MASK", "stop"}},
		{"continuation first", rawFrame(0x80, true, []byte("x")), []string{"error continuation after FIN", "stop"}},
		{"text inside a message", cat(text(false, "a"), text(true, "b")), []string{"error data before FIN", "stop"}},
		{"fragmented ping", rawFrame(0x09, true, nil), []string{"error FIN not set on control", "stop"}},
		{"bad opcode", rawFrame(0x83, true, nil), []string{"error bad opcode 3", "stop"}},
		{"too big, then lingering until the close", cat(text(true, "0123456789abcdef"), text(true, "x"), rawFrame(0x88, true, []byte{0x03, 0xe8})),
			[]string{"too big", "close 1000 ", "stop"}},
		{"too big over fragments", cat(text(false, "01234567"), rawFrame(0x00, true, []byte("89abcdef"))),
			[]string{"too big"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for cut := range len(tc.in) + 1 {
				got := parseSplit(append([]byte(nil), tc.in...), 10, []int{cut})
				if !slices.Equal(got, tc.want) {
					t.Fatalf("cut at %d: got %q, want %q", cut, got, tc.want)
				}
			}
		})
	}
}

// Any bytes, split anywhere: no panic, and the same events as in one read.
func FuzzFrameParser(f *testing.F) {
	f.Add(rawFrame(0x81, true, []byte("hello")), 3, 7)
	f.Add(slices.Concat(rawFrame(0x01, true, []byte("a")), rawFrame(0x89, true, nil), rawFrame(0x80, true, []byte("b"))), 1, 9)
	f.Add([]byte{0x81, 0xFF, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2, 5)
	f.Fuzz(func(t *testing.T, b []byte, c1, c2 int) {
		whole := parseSplit(append([]byte(nil), b...), 64, nil)
		split := parseSplit(append([]byte(nil), b...), 64, []int{c1, c2})
		if !slices.Equal(whole, split) {
			t.Fatalf("split at %d,%d: %q, whole: %q", c1, c2, split, whole)
		}
	})
}
