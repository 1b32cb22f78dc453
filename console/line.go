package console

import (
	"encoding/json"
	"strings"
	"time"

	"switchboard/domain"
	"switchboard/gateway"
)

// maxData is the most payload bytes a line carries; a larger payload is
// cut to a preview (the page says so).
const maxData = 16 << 10

// previewBytes is the length of a cut payload's preview.
const previewBytes = 2 << 10

// Centrifugo client publications go through the outbox; the Centrifugo
// adapter tags their envelopes with the publisher, which makes them client
// events in the log.
const (
	tagCentrifugoClient = "centrifugo.client"
	tagCentrifugoUser   = "centrifugo.user"
)

// LogLine is one line of the live log as the stream sends it (the "data"
// of each event-stream message). Kinds: event, client, connect,
// disconnect, subscribe, unsubscribe, auth_failure, and dropped (how many
// lines this page lost because it, or the feed, could not keep up).
type LogLine struct {
	Seq  uint64    `json:"seq,omitempty"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Node delivered it (cluster mode).
	Node string `json:"node,omitempty"`
	// App is the Pusher app of an app channel (pusher:{app}:{name}).
	App     string `json:"app,omitempty"`
	Project string `json:"project,omitempty"`
	Channel string `json:"channel,omitempty"`
	Event   string `json:"event,omitempty"`
	ID      string `json:"id,omitempty"`
	// Size is the payload's length in bytes.
	Size int `json:"size,omitempty"`
	// Reached is how many subscriptions of Node it was handed to, Fanout
	// the same per protocol.
	Reached     *int                `json:"reached,omitempty"`
	Fanout      map[string]int      `json:"fanout,omitempty"`
	TriggeredBy *domain.TriggeredBy `json:"triggered_by,omitempty"`
	Data        json.RawMessage     `json:"data,omitempty"`
	// Preview is the start of a payload too large to carry whole.
	Preview string              `json:"preview,omitempty"`
	From    *gateway.ClientInfo `json:"from,omitempty"`
	// Relayed: a client event another node sent to Node.
	Relayed bool              `json:"relayed,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Proto   string            `json:"proto,omitempty"`
	Conn    string            `json:"conn,omitempty"`
	User    string            `json:"user,omitempty"`
	Remote  string            `json:"remote,omitempty"`
	Code    int               `json:"code,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	// By says who closed: "client" or "server".
	By    string `json:"by,omitempty"`
	Door  string `json:"door,omitempty"`
	Count *int   `json:"count,omitempty"`
	// Dropped is a dropped line's count.
	Dropped uint64 `json:"dropped,omitempty"`
}

// encodeLine is l's JSON, without "seq" (the feed numbers it).
func encodeLine(l *gateway.Line, node string) []byte {
	out := LogLine{Kind: l.Kind.String(), Time: l.Time.UTC(), Node: node, Channel: l.Channel}
	out.App, out.Project = appOf(l.Channel), l.Project
	if out.Project == "" {
		out.Project = projectOf(l.Channel)
	}
	switch l.Kind {
	case gateway.LineEvent, gateway.LineClient:
		out.Event, out.ID, out.Size, out.TriggeredBy = l.Event, l.ID, len(l.Data), l.TriggeredBy
		out.From, out.Relayed, out.Tags = l.From, l.Relayed, l.Tags
		reached := l.Reached
		out.Reached, out.Fanout = &reached, l.Fanout()
		out.Data, out.Preview = payload(l.Data)
		if c := l.Tags[tagCentrifugoClient]; l.Kind == gateway.LineEvent && c != "" {
			out.Kind = gateway.LineClient.String()
			out.From = &gateway.ClientInfo{ConnID: c, UserID: l.Tags[tagCentrifugoUser]}
		}
	case gateway.LineAuthFailure:
		out.Proto, out.Door, out.Conn, out.User, out.Remote, out.Reason = l.Proto.String(), l.Door.String(), l.Conn, l.User, l.Remote, l.Reason
	default: // connection lines
		out.Proto, out.Conn, out.User, out.Remote = l.Proto.String(), l.Conn, l.User, l.Remote
		if l.Kind == gateway.LineDisconnect {
			out.Code, out.Reason, out.By = l.Code, l.Reason, "server"
			if l.ByClient {
				out.By = "client"
			}
		}
		if l.Kind == gateway.LineSubscribe || l.Kind == gateway.LineUnsubscribe {
			count := l.Count
			out.Count = &count
		}
	}
	b, err := json.Marshal(out)
	if err != nil { // a payload json.Valid accepted cannot fail; be safe anyway
		out.Data, out.Preview = nil, "(not encodable: "+err.Error()+")"
		b, _ = json.Marshal(out)
	}
	return b
}

// droppedLine is the line that tells a page it lost n lines.
func droppedLine(n uint64, now time.Time) []byte {
	b, _ := json.Marshal(LogLine{Kind: "dropped", Time: now.UTC(), Dropped: n})
	return b
}

// payload is data as a line carries it: whole when it is JSON of at most
// maxData bytes, else a preview.
func payload(data json.RawMessage) (json.RawMessage, string) {
	if len(data) == 0 {
		return nil, ""
	}
	if len(data) <= maxData && json.Valid(data) {
		return data, ""
	}
	p := data
	if len(p) > previewBytes {
		p = p[:previewBytes]
	}
	return nil, strings.ToValidUTF8(string(p), "\uFFFD") + "…"
}

// appOf is the Pusher app of an app channel ("pusher:{app}:{name}").
func appOf(channel string) string {
	rest, ok := strings.CutPrefix(channel, "pusher:")
	if !ok {
		return ""
	}
	app, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return app
}

// projectOf is the project of a dashboard channel
// (dashboard.project.{slug}.{family}).
func projectOf(channel string) string {
	rest, ok := strings.CutPrefix(channel, "dashboard.project.")
	if !ok {
		return ""
	}
	slug, _, _ := strings.Cut(rest, ".")
	return slug
}
