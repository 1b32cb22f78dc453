package pusher

import (
	"encoding/json"
	"strings"
	"testing"

	"switchboard/gateway"
)

func benchData() json.RawMessage {
	b, _ := json.Marshal(map[string]any{"attendee_id": 123456, "project_id": 1, "first_name": strings.Repeat("x", 72),
		"last_name": "Bench", "email": "bench@example.com", "attendee_type_id": nil, "created_at": "2026-11-22T18:00:00Z",
		"x-triggered-by": map[string]string{"operation_id": "v1.project.attendees.store", "request_id": "01JDBENCHBENCHBENCHBENCH00"}})
	return b
}

// BenchmarkEventFrame encodes a ~300-byte event once per message (the
// first subscriber's cost: data re-quoted as a JSON string, then framed).
func BenchmarkEventFrame(b *testing.B) {
	data := benchData()
	const ch = "private-dashboard.project.bench.attendees"
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m := &gateway.Message{Channel: "dashboard.project.bench.attendees", Event: "AttendeeCreated", Data: data}
		f := m.Frame(ch, func(m *gateway.Message) []byte { return eventFrame(ch, m) })
		if len(f) < len(data) {
			b.Fatal("short frame")
		}
	}
}

// BenchmarkEventFrameCached is every later subscriber's cost: a cache hit.
func BenchmarkEventFrameCached(b *testing.B) {
	const ch = "private-dashboard.project.bench.attendees"
	m := &gateway.Message{Channel: "dashboard.project.bench.attendees", Event: "AttendeeCreated", Data: benchData()}
	enc := func(m *gateway.Message) []byte { return eventFrame(ch, m) }
	m.Frame(ch, enc)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = m.Frame(ch, enc)
	}
}
