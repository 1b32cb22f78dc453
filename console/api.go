package console

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
	"switchboard/gateway"
	"switchboard/gateway/webhooks"
)

// Routes registers the page (GET /console, /console/*) and its API under
// /console/api on e. The page is public (it holds no data); every API
// route needs a session or an admin JWT (see auth.go).
func (c *Console) Routes(e *echo.Echo) {
	e.GET("/console", c.page)
	e.GET("/console/*", c.page)
	g := e.Group("/console/api")
	g.POST("/session", c.login)
	authed := c.requireSession(false)
	g.GET("/stream", c.stream, c.requireSession(true))
	g.GET("/overview", c.overview, authed)
	g.GET("/channels", c.channels, authed)
	g.GET("/presence", c.presence, authed)
	db := []echo.MiddlewareFunc{authed}
	if c.cfg.DBGuard != nil {
		db = append(db, c.cfg.DBGuard)
	}
	if c.cfg.Webhooks != nil {
		g.GET("/webhooks", c.webhooks, db...)
		g.POST("/webhooks/:id/retry", c.retryWebhook, db...)
	}
	if c.cfg.Publish != nil {
		g.POST("/events", c.testEvent, append(db, domain.Op(OpTestEvent))...)
	}
}

// OpTestEvent is the operation id a test event's x-triggered-by carries.
const OpTestEvent = "console.events.store"

// backlogTimeout bounds the outbox count of one overview.
const backlogTimeout = 2 * time.Second

// Overview is what GET /console/api/overview answers: the node's (and in
// cluster mode every node's) state.
type Overview struct {
	// Node is this node's id in cluster mode, "" on a single node.
	Node    string    `json:"node"`
	Cluster bool      `json:"cluster"`
	Time    time.Time `json:"time"`
	// Connections, Channels and Subscriptions add up every node.
	Connections   map[string]int `json:"connections"`
	Channels      int            `json:"channels"`
	Subscriptions int            `json:"subscriptions"`
	Relay         *RelayState    `json:"relay"`
	Webhooks      *WebhookCounts `json:"webhooks"`
	// Nodes are this node first, then the others that answered.
	Nodes   []NodeState  `json:"nodes"`
	Console ConsoleState `json:"console"`
}

// NodeState is one node's part of the overview.
type NodeState struct {
	ID            string         `json:"id"`
	Connections   map[string]int `json:"connections"`
	Channels      int            `json:"channels"`
	Subscriptions int            `json:"subscriptions"`
	// Relaying: this node relays the outbox (one node of a cluster does).
	Relaying bool `json:"relaying"`
	// LagMS is the oldest undelivered event's wait on the relaying node.
	LagMS float64 `json:"lag_ms"`
	// SeenMS is how long ago the node was heard from (0: this node).
	SeenMS int64 `json:"seen_ms"`
	// Top are the node's channels with the most subscribers (at most
	// maxNodeChannels), for the cluster-wide channel list.
	Top []ChannelInfo `json:"top,omitempty"`
}

// RelayState is the outbox relay as this node sees it.
type RelayState struct {
	Running  bool   `json:"running"`
	Relaying bool   `json:"relaying"`
	Failing  string `json:"failing,omitempty"`
	// LagMS is how long the oldest event handed to the broker and not yet
	// delivered everywhere has waited (0: none waits).
	LagMS float64 `json:"lag_ms"`
	// Backlog is the outbox rows not yet delivered (null when the count
	// failed: BacklogError says why).
	Backlog      *int64 `json:"backlog"`
	BacklogError string `json:"backlog_error,omitempty"`
	// Events is how many events this node's relay delivered.
	Events uint64 `json:"events"`
}

// WebhookCounts are the webhook queue's pending and failed deliveries, up
// to 100 each (More: there are more).
type WebhookCounts struct {
	Pending     int  `json:"pending"`
	PendingMore bool `json:"pending_more"`
	Failed      int  `json:"failed"`
	FailedMore  bool `json:"failed_more"`
}

// ConsoleState is the console's own state.
type ConsoleState struct {
	// Streams are the pages open on this node.
	Streams int `json:"streams"`
	// Dropped is how many lines this node's tap could not hand to the
	// console because it was behind.
	Dropped uint64 `json:"dropped"`
	// Who is logged in.
	Who string `json:"who"`
}

func (c *Console) overview(ec echo.Context) error {
	now := c.cfg.Now()
	self := c.nodeState()
	o := Overview{Node: c.cfg.NodeID, Cluster: c.cluster != nil, Time: now.UTC(), Nodes: []NodeState{self}}
	if c.cluster != nil {
		others := c.cluster.remote(now)
		sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
		o.Nodes = append(o.Nodes, others...)
	}
	o.Connections = map[string]int{}
	for i := range o.Nodes {
		n := &o.Nodes[i]
		for p, k := range n.Connections {
			o.Connections[p] += k
		}
		o.Channels += n.Channels
		o.Subscriptions += n.Subscriptions
		n.Top = nil // the channel list has them
	}
	if len(o.Nodes) > 1 {
		o.Channels = len(c.channelList()) // a channel may be on several nodes
	}
	o.Relay = c.relayState(ec.Request().Context(), now)
	o.Webhooks = c.webhookCounts(ec.Request().Context())
	streams, _ := c.feed.watching()
	s, _ := ec.Get(ctxWho).(session)
	o.Console = ConsoleState{Streams: streams, Dropped: c.feed.dropped(), Who: s.who}
	return ec.JSON(http.StatusOK, o)
}

// maxNodeChannels bounds the channels a node sends in its state.
const maxNodeChannels = 500

// nodeState is this node's state.
func (c *Console) nodeState() NodeState {
	n := c.cfg.Node
	st := NodeState{ID: c.cfg.NodeID, Connections: map[string]int{}, Relaying: c.cfg.Relaying()}
	for _, p := range gateway.Protocols() {
		st.Connections[p.String()] = n.Stats().Connections(p)
	}
	st.Top = c.localChannels()
	st.Channels = len(st.Top)
	for _, ch := range st.Top {
		st.Subscriptions += ch.Subscribers
	}
	if st.Relaying && c.cfg.Relay != nil {
		st.LagMS = ms(c.cfg.Relay.Lag(c.cfg.Now()))
	}
	sort.Slice(st.Top, func(i, j int) bool {
		return st.Top[i].Subscribers > st.Top[j].Subscribers ||
			st.Top[i].Subscribers == st.Top[j].Subscribers && st.Top[i].Name < st.Top[j].Name
	})
	if len(st.Top) > maxNodeChannels {
		st.Top = st.Top[:maxNodeChannels]
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (c *Console) relayState(ctx context.Context, now time.Time) *RelayState {
	if c.cfg.Relay == nil && c.cfg.Backlog == nil {
		return nil
	}
	r := &RelayState{Relaying: c.cfg.Relaying()}
	if c.cfg.Relay != nil {
		r.Running, r.Failing, r.Events = c.cfg.Relay.Running(), c.cfg.Relay.Failing(), c.cfg.Relay.Events()
		r.LagMS = ms(c.cfg.Relay.Lag(now))
	}
	if c.cfg.Backlog != nil {
		ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
		defer cancel()
		n, err := c.cfg.Backlog(ctx)
		if err != nil {
			r.BacklogError = "the outbox could not be counted: " + err.Error()
		} else {
			r.Backlog = &n
		}
	}
	return r
}

func (c *Console) webhookCounts(ctx context.Context) *WebhookCounts {
	if c.cfg.Webhooks == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	var w WebhookCounts
	if l, err := c.cfg.Webhooks.List(ctx, webhooks.StatusPending, domain.Page{Limit: 100}); err == nil {
		w.Pending, w.PendingMore = len(l.Data), l.NextCursor != ""
	}
	if l, err := c.cfg.Webhooks.List(ctx, webhooks.StatusFailed, domain.Page{Limit: 100}); err == nil {
		w.Failed, w.FailedMore = len(l.Data), l.NextCursor != ""
	}
	return &w
}

// ChannelInfo is one channel of the channel list.
type ChannelInfo struct {
	// Name is the hub channel: the canonical name, or pusher:{app}:{name}
	// for a Pusher app channel.
	Name string `json:"name"`
	App  string `json:"app,omitempty"`
	// Subscribers are its subscriptions (on every node), Members the
	// distinct users of its presence.
	Subscribers int `json:"subscribers"`
	Members     int `json:"members"`
	// Nodes are the subscriptions per node (cluster mode).
	Nodes map[string]int `json:"nodes,omitempty"`
}

// ChannelList is what GET /console/api/channels answers.
type ChannelList struct {
	Data []ChannelInfo `json:"data"`
	// Total is how many channels matched before the limit.
	Total int `json:"total"`
}

func (c *Console) localChannels() []ChannelInfo {
	h := c.cfg.Node.Hub
	names := h.Channels("")
	out := make([]ChannelInfo, 0, len(names))
	for _, name := range names {
		if n := h.Count(name); n > 0 {
			out = append(out, ChannelInfo{Name: name, App: appOf(name), Subscribers: n})
		}
	}
	return out
}

// channelList merges this node's channels with the other nodes' (their
// busiest maxNodeChannels each).
func (c *Console) channelList() []ChannelInfo {
	byName := map[string]*ChannelInfo{}
	add := func(node string, chans []ChannelInfo) {
		for _, ch := range chans {
			x := byName[ch.Name]
			if x == nil {
				x = &ChannelInfo{Name: ch.Name, App: appOf(ch.Name)}
				byName[ch.Name] = x
			}
			x.Subscribers += ch.Subscribers
			if c.cluster != nil {
				if x.Nodes == nil {
					x.Nodes = map[string]int{}
				}
				x.Nodes[node] += ch.Subscribers
			}
		}
	}
	add(c.cfg.NodeID, c.localChannels())
	if c.cluster != nil {
		for _, n := range c.cluster.remote(c.cfg.Now()) {
			add(n.ID, n.Top)
		}
	}
	out := make([]ChannelInfo, 0, len(byName))
	for _, x := range byName {
		out = append(out, *x)
	}
	return out
}

// maxChannels is the most channels one answer lists.
const maxChannels = 1000

func (c *Console) channels(ec echo.Context) error {
	q := strings.ToLower(ec.QueryParam("q"))
	sortBy := ec.QueryParam("sort")
	switch sortBy {
	case "", "name", "subscribers":
	default:
		return domain.Invalid("sort", "must be name or subscribers")
	}
	limit := 200
	if s := ec.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxChannels {
			return domain.Invalid("limit", "must be an integer from 1 to %d", maxChannels)
		}
		limit = n
	}
	all := c.channelList()
	out := ChannelList{Data: []ChannelInfo{}}
	for _, ch := range all {
		if q != "" && !strings.Contains(strings.ToLower(ch.Name), q) {
			continue
		}
		_, ch.Members = c.cfg.Node.Presence.Count(ch.Name)
		out.Data = append(out.Data, ch)
	}
	if sortBy == "subscribers" {
		sort.Slice(out.Data, func(i, j int) bool {
			a, b := out.Data[i], out.Data[j]
			return a.Subscribers > b.Subscribers || a.Subscribers == b.Subscribers && a.Name < b.Name
		})
	} else {
		sort.Slice(out.Data, func(i, j int) bool { return out.Data[i].Name < out.Data[j].Name })
	}
	out.Total = len(out.Data)
	if len(out.Data) > limit {
		out.Data = out.Data[:limit]
	}
	return ec.JSON(http.StatusOK, out)
}

// PresenceList is what GET /console/api/presence answers: a channel's
// presence members (every node's in cluster mode).
type PresenceList struct {
	Channel string           `json:"channel"`
	Members []gateway.Member `json:"members"`
	// Connections are the connections present (a user may have several).
	Connections int `json:"connections"`
}

func (c *Console) presence(ec echo.Context) error {
	ch := ec.QueryParam("channel")
	if err := checkChannel(ch); err != nil {
		return err
	}
	p := c.cfg.Node.Presence
	out := PresenceList{Channel: ch, Members: p.Members(ch)}
	if out.Members == nil {
		out.Members = []gateway.Member{}
	}
	out.Connections, _ = p.Count(ch)
	return ec.JSON(http.StatusOK, out)
}

// maxChannelName bounds a channel name the console accepts.
const maxChannelName = 200

func checkChannel(ch string) error {
	switch {
	case ch == "":
		return domain.Invalid("channel", "is required")
	case len(ch) > maxChannelName:
		return domain.Invalid("channel", "is longer than %d bytes", maxChannelName)
	case strings.IndexFunc(ch, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return domain.Invalid("channel", "must not contain spaces or control characters")
	}
	return nil
}

func (c *Console) webhooks(ec echo.Context) error {
	status := ec.QueryParam("status")
	switch status {
	case "", webhooks.StatusPending, webhooks.StatusSent, webhooks.StatusFailed:
	default:
		return domain.Invalid("status", "must be pending, sent or failed")
	}
	p, err := domain.PageOf(ec)
	if err != nil {
		return err
	}
	l, err := c.cfg.Webhooks.List(ec.Request().Context(), status, p)
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, l)
}

func (c *Console) retryWebhook(ec echo.Context) error {
	id, err := domain.IDParam(ec, "id", "webhook delivery")
	if err != nil {
		return err
	}
	d, err := c.cfg.Webhooks.Retry(ec.Request().Context(), id, c.cfg.Now())
	if err != nil {
		return err
	}
	if c.cfg.WakeWebhooks != nil {
		c.cfg.WakeWebhooks()
	}
	return ec.JSON(http.StatusOK, d)
}

// TestEventRequest is the body of POST /console/api/events.
type TestEventRequest struct {
	// Channel is a hub channel (as the channel list names it).
	Channel string `json:"channel"`
	// Event is the event's name. Empty means "console-test".
	Event string `json:"event"`
	// Data is the event's object. Absent means {"message": "test event
	// from the debug console"}.
	Data json.RawMessage `json:"data"`
}

// TestEvent is what POST /console/api/events answers once the event is
// committed to the outbox.
type TestEvent struct {
	ID          string             `json:"id"`
	Channel     string             `json:"channel"`
	Event       string             `json:"event"`
	TriggeredBy domain.TriggeredBy `json:"triggered_by"`
}

// maxTestData bounds a test event's data (Pusher's default event limit).
const maxTestData = 10 << 10

// rawEvent is a test event: its name and the object the page sent.
type rawEvent struct {
	name string
	data json.RawMessage
}

func (e rawEvent) Name() string                 { return e.name }
func (e rawEvent) MarshalJSON() ([]byte, error) { return e.data, nil }

func (c *Console) testEvent(ec echo.Context) error {
	var in TestEventRequest
	if err := domain.Bind(ec, &in); err != nil {
		return err
	}
	if err := checkChannel(in.Channel); err != nil {
		return err
	}
	if in.Event == "" {
		in.Event = "console-test"
	}
	switch {
	case len(in.Event) > 200:
		return domain.Invalid("event", "is longer than 200 bytes")
	case strings.HasPrefix(in.Event, "pusher:") || strings.HasPrefix(in.Event, "pusher_internal:"):
		return domain.Invalid("event", "must not start with pusher: or pusher_internal: (the protocol's own events)")
	case strings.IndexFunc(in.Event, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return domain.Invalid("event", "must not contain control characters")
	}
	data := in.Data
	if len(data) == 0 || string(data) == "null" {
		data = json.RawMessage(`{"message":"test event from the debug console"}`)
	}
	if len(data) > maxTestData {
		return domain.Invalid("data", "is more than %d bytes", maxTestData)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return domain.Invalid("data", "must be a JSON object")
	}
	ctx := ec.Request().Context()
	env, err := domain.NewEnvelope(ctx, domain.Scope{Channels: []string{in.Channel}}, rawEvent{name: in.Event, data: data})
	if err != nil {
		return domain.Invalid("data", "%v", err)
	}
	if err := c.cfg.Publish(ctx, env); err != nil {
		return err
	}
	out := TestEvent{ID: env.ID, Channel: in.Channel, Event: in.Event}
	if env.TriggeredBy != nil {
		out.TriggeredBy = *env.TriggeredBy
	}
	return ec.JSON(http.StatusCreated, out)
}
