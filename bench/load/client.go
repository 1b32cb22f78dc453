package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Protocol names a client protocol.
type Protocol string

// The protocols the load tool speaks.
const (
	Pusher     Protocol = "pusher"     // Pusher protocol 7 (pusher-js)
	Centrifugo Protocol = "centrifugo" // Centrifugo client protocol v2, JSON
)

// Target is one server endpoint and how to subscribe on it.
type Target struct {
	Protocol Protocol
	// WSURL is the WebSocket URL (ws://host/app/app-key?protocol=7 or
	// ws://host/connection/websocket).
	WSURL string
	// AuthURL is Pusher's /broadcasting/auth for private channels.
	AuthURL string
	// Token is the bearer for AuthURL, or the Centrifugo connection token.
	Token string
	// Channels are the client-facing channel names to subscribe to.
	Channels []string
	// TokenFor, when set, gives each connection its own token (its own user)
	// (e.g. a user per connection, under a per-user connection limit).
	TokenFor func() string
}

// Client is one subscribed connection. Its reader goroutine records every
// stamped delivery into the recorder current at the time.
type Client struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	rec  *atomic.Pointer[Recorder]
	done chan struct{}
	once sync.Once    // finish
	err  atomic.Value // readErr
	poll clientPoll   // the client poller's state (poll_linux.go)
}

// Dialer opens clients from several loopback source addresses so that many
// thousands of connections never run out of ephemeral ports.
type Dialer struct {
	SourceIPs int // 127.0.0.2 … 127.0.0.(1+SourceIPs); 0 = system choice
	next      atomic.Uint32
	http      *http.Client
}

// NewDialer returns a dialer with its own HTTP client for auth calls.
func NewDialer(sourceIPs int) *Dialer {
	return &Dialer{SourceIPs: sourceIPs, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}}
}

// CloseIdleConnections closes the auth client's idle keep-alive
// connections (each holds a goroutine in the server).
func (d *Dialer) CloseIdleConnections() { d.http.CloseIdleConnections() }

func (d *Dialer) netDialer() *net.Dialer {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if d.SourceIPs > 0 {
		i := d.next.Add(1) % uint32(d.SourceIPs)
		nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
	}
	return nd
}

// Dial connects and subscribes; it returns once every subscription is
// confirmed.
func (d *Dialer) Dial(ctx context.Context, t Target, rec *atomic.Pointer[Recorder]) (*Client, error) {
	var fc *framedConn
	nd := d.netDialer()
	wd := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 512,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			fc = &framedConn{Conn: nc}
			return fc, nil
		}}
	ws, _, err := wd.DialContext(ctx, t.WSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", t.WSURL, err)
	}
	c := &Client{ws: ws, rec: rec, done: make(chan struct{})}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	switch t.Protocol {
	case Pusher:
		err = c.pusherHandshake(ctx, d, t)
	case Centrifugo:
		err = c.centrifugoHandshake(t)
	default:
		err = fmt.Errorf("unknown protocol %q", t.Protocol)
	}
	if err != nil {
		ws.Close()
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	c.startReader(t.Protocol, fc)
	return c, nil
}

func (c *Client) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// Close closes the socket (a clean close frame first) and waits for the reader.
func (c *Client) Close() {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	if c.polled() {
		// The poller reads the server's answering close frame; the socket
		// is closed only after the poller has let go of it.
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
		c.finish(errClosed)
	}
	_ = c.ws.Close()
	<-c.done
}

var errClosed = errors.New("closed by the client")

// Alive reports whether the reader is still running.
func (c *Client) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Err is why the reader stopped, if it did.
func (c *Client) Err() error {
	if e, ok := c.err.Load().(readErr); ok {
		return e.err
	}
	return nil
}

type pusherFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func (c *Client) readJSON(v any) error {
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (c *Client) pusherHandshake(ctx context.Context, d *Dialer, t Target) error {
	var f pusherFrame
	if err := c.readJSON(&f); err != nil {
		return fmt.Errorf("pusher: handshake: %w", err)
	}
	if f.Event != "pusher:connection_established" {
		return fmt.Errorf("pusher: handshake: got %s %s", f.Event, f.Data)
	}
	var s string
	var est struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal(f.Data, &s); err != nil {
		return fmt.Errorf("pusher: handshake data: %w", err)
	}
	if err := json.Unmarshal([]byte(s), &est); err != nil {
		return fmt.Errorf("pusher: handshake data: %w", err)
	}
	tok := t.Token
	if t.TokenFor != nil {
		tok = t.TokenFor()
	}
	for _, ch := range t.Channels {
		sub := map[string]any{"channel": ch}
		if strings.HasPrefix(ch, "private-") {
			auth, err := d.pusherAuth(ctx, t.AuthURL, tok, est.SocketID, ch)
			if err != nil {
				return err
			}
			sub["auth"] = auth
		}
		b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": sub})
		if err := c.send(b); err != nil {
			return fmt.Errorf("pusher: subscribe: %w", err)
		}
	}
	for pending := len(t.Channels); pending > 0; {
		var f pusherFrame
		if err := c.readJSON(&f); err != nil {
			return fmt.Errorf("pusher: subscribe: %w", err)
		}
		switch f.Event {
		case "pusher_internal:subscription_succeeded":
			pending--
		case "pusher:subscription_error", "pusher:error":
			return fmt.Errorf("pusher: subscribe %s: %s", f.Channel, f.Data)
		}
	}
	return nil
}

func (d *Dialer) pusherAuth(ctx context.Context, authURL, token, socketID, channel string) (string, error) {
	body, _ := json.Marshal(map[string]string{"socket_id": socketID, "channel_name": channel})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, authURL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("pusher: auth: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("pusher: auth: HTTP %d: %s", resp.StatusCode, b)
	}
	var out struct {
		Auth string `json:"auth"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("pusher: auth: %w", err)
	}
	return out.Auth, nil
}

type centReply struct {
	ID    uint32          `json:"id"`
	Error json.RawMessage `json:"error"`
}

func (c *Client) centrifugoHandshake(t Target) error {
	var b bytes.Buffer
	enc := func(v any) { j, _ := json.Marshal(v); b.Write(j) }
	tok := t.Token
	if t.TokenFor != nil {
		tok = t.TokenFor()
	}
	enc(map[string]any{"id": 1, "connect": map[string]any{"token": tok, "name": "bench"}})
	for i, ch := range t.Channels {
		b.WriteByte('\n')
		enc(map[string]any{"id": 2 + i, "subscribe": map[string]any{"channel": ch}})
	}
	if err := c.send(b.Bytes()); err != nil {
		return fmt.Errorf("centrifugo: connect: %w", err)
	}
	for pending := 1 + len(t.Channels); pending > 0; {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("centrifugo: connect: %w", err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(msg), []byte("\n")) {
			var r centReply
			if err := json.Unmarshal(line, &r); err != nil {
				return fmt.Errorf("centrifugo: reply: %w", err)
			}
			if r.ID == 0 {
				continue
			}
			if len(r.Error) > 0 {
				return fmt.Errorf("centrifugo: command %d: %s", r.ID, r.Error)
			}
			pending--
		}
	}
	return nil
}

var (
	pusherPing  = []byte(`"pusher:ping"`)
	pusherPong  = []byte(`{"event":"pusher:pong","data":{}}`)
	centPingMsg = []byte(`{}`)
)

// read records deliveries until the socket ends: the goroutine reader,
// used where the client poller is not (see startReader).
func (c *Client) read(p Protocol, fc *framedConn) {
	fc.through = true
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.finish(err)
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.finish(err)
			return
		}
		c.handle(p, buf.Bytes())
	}
}

// handle records the stamped deliveries in one message and answers the
// protocol's application-level pings so idle connections stay open.
func (c *Client) handle(p Protocol, msg []byte) {
	now := time.Now().UnixNano()
	n := scanStamps(msg, func(seq int, sent int64) {
		if rec := c.rec.Load(); rec != nil {
			rec.Observe(seq, sent, now, len(msg))
		}
	})
	switch {
	case p == Pusher && n == 0 && bytes.Contains(msg, pusherPing):
		_ = c.send(pusherPong)
	case p == Centrifugo && hasCentrifugoPing(msg):
		// A server ping may share a frame with publications.
		_ = c.send(centPingMsg)
	}
}

// finish records why the reader stopped and marks the client dead; only
// the first call counts.
func (c *Client) finish(err error) {
	c.once.Do(func() {
		c.err.Store(readErr{err})
		c.stopPolling()
		close(c.done)
	})
}

// readErr boxes the reader's error so that atomic.Value always holds one
// type.
type readErr struct{ err error }

// hasCentrifugoPing reports whether one of the frame's newline-separated
// replies is the empty ping object.
func hasCentrifugoPing(msg []byte) bool {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		if bytes.Equal(bytes.TrimSpace(line), centPingMsg) {
			return true
		}
	}
	return false
}

// Stamp is the marker the publisher embeds in each event payload:
// ~b~<seq>~<unix ns>~ . It has no quote or backslash so it survives being
// nested in Pusher's JSON-string data unchanged.
const stampMarker = "~b~"

// Stamp renders the marker for seq sent at t.
func Stamp(seq int, t time.Time) string {
	return fmt.Sprintf("%s%d~%d~", stampMarker, seq, t.UnixNano())
}

// scanStamps calls fn for every stamp in msg (a Centrifugo frame may batch
// several publications) and returns how many it found.
func scanStamps(msg []byte, fn func(seq int, sent int64)) int {
	n := 0
	for {
		i := bytes.Index(msg, []byte(stampMarker))
		if i < 0 {
			return n
		}
		msg = msg[i+len(stampMarker):]
		seq, rest, ok := parseNum(msg)
		if !ok {
			continue
		}
		sent, rest, ok := parseNum(rest)
		if !ok {
			continue
		}
		msg = rest
		fn(int(seq), sent)
		n++
	}
}

func parseNum(b []byte) (int64, []byte, bool) {
	var v int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	if i == 0 || i >= len(b) || b[i] != '~' {
		return 0, b, false
	}
	return v, b[i+1:], true
}

// ErrNotAvailable means a server does not offer the asked protocol.
var ErrNotAvailable = errors.New("not available")
