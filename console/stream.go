package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/gateway"
)

// The live log is a Server-Sent Events stream (GET /console/api/stream):
// the page's EventSource reconnects by itself and says, in Last-Event-ID,
// the last line it has, so it gets what the ring still holds after it.
//
//	retry: 2000
//	event: hello        {"node": "...", "cluster": false, "who": "..."}
//	id: 42              (then one message per line: LogLine as JSON)
//	data: {"seq":42,"kind":"event",...}
//
// A comment every pingEvery keeps proxies from closing an idle stream. The
// stream ends when the page goes, when the session expires (the page logs
// in again) or when the server stops.

const (
	pingEvery = 15 * time.Second
	// writeTimeout drops a page whose socket took nothing for this long
	// (its lines were being dropped meanwhile): a stuck stream must not
	// keep the tap on, nor hold the server's shutdown.
	writeTimeout = 30 * time.Second
	// dropEvery is how often a page is told about lines it lost.
	dropEvery = time.Second
)

// Hello is the first message of a stream.
type Hello struct {
	Node    string   `json:"node"`
	Cluster bool     `json:"cluster"`
	Who     string   `json:"who"`
	Kinds   []string `json:"kinds"`
	// Ring is how many recent lines the server keeps.
	Ring int `json:"ring"`
}

func (c *Console) stream(ec echo.Context) error {
	s, _ := ec.Get(ctxWho).(session)
	var last uint64
	if v := ec.Request().Header.Get("Last-Event-ID"); v != "" {
		last, _ = strconv.ParseUint(v, 10, 64)
	} else if v := ec.QueryParam("last_id"); v != "" {
		last, _ = strconv.ParseUint(v, 10, 64)
	}
	w := ec.Response()
	rc := http.NewResponseController(w.Writer)
	send := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	st, replay := c.feed.open(last)
	defer c.feed.close(st)
	if c.cluster != nil {
		c.cluster.kick()
	}
	hello, _ := json.Marshal(Hello{Node: c.cfg.NodeID, Cluster: c.cluster != nil, Who: s.who, Kinds: kinds(), Ring: c.cfg.RingSize})
	buf := make([]byte, 0, 4096)
	buf = append(buf, "retry: 2000\n\nevent: hello\ndata: "...)
	buf = append(buf, hello...)
	buf = append(buf, "\n\n"...)
	for _, e := range replay {
		buf = appendMessage(buf, e)
	}
	if send(buf) != nil {
		return nil
	}

	ctx := ec.Request().Context()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	drops := time.NewTicker(dropEvery)
	defer drops.Stop()
	var expire <-chan time.Time
	if !s.exp.IsZero() {
		t := time.NewTimer(time.Until(s.exp))
		defer t.Stop()
		expire = t.C
	}
	var told, toldTap uint64
	for {
		buf = buf[:0]
		select {
		case <-ctx.Done():
			return nil
		case <-c.closing:
			return nil
		case <-expire:
			buf = append(buf, "event: expired\ndata: {}\n\n"...)
			_ = send(buf)
			return nil
		case <-ping.C:
			buf = append(buf, ": ping\n\n"...)
		case <-drops.C:
			// Lines lost at the tap (the feed was behind) and on the way to
			// this page (the page was behind).
			lost, lostTap := st.dropped.Load(), c.feed.dropped()
			if lost == told && lostTap <= toldTap {
				continue
			}
			n := lost - told
			if lostTap > toldTap {
				n += lostTap - toldTap
			}
			told, toldTap = lost, lostTap
			buf = appendMessage(buf, entry{b: droppedLine(n, c.cfg.Now())})
		case e := <-st.ch:
			buf = appendMessage(buf, e)
			// Take what else is queued into the same write.
			for more := true; more && len(buf) < 64<<10; {
				select {
				case e := <-st.ch:
					buf = appendMessage(buf, e)
				default:
					more = false
				}
			}
		}
		if send(buf) != nil {
			return nil
		}
	}
}

// appendMessage appends e as one event-stream message (a line's JSON has
// no newline: encoding/json escapes them in strings).
func appendMessage(buf []byte, e entry) []byte {
	if e.seq > 0 {
		buf = append(buf, "id: "...)
		buf = strconv.AppendUint(buf, e.seq, 10)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, e.b...)
	return append(buf, "\n\n"...)
}

// kinds are the line kinds the page offers as filters.
func kinds() []string {
	var out []string
	for _, k := range gateway.LineKinds() {
		out = append(out, k.String())
	}
	return out
}
