package gateway

// Message tags every protocol adapter understands (Message.Tags, carried
// through the outbox as domain.Envelope.Tags). Adapters keep their own
// tags for what concerns them alone; these are for what a publisher on one
// front door asks of all three.
const (
	// TagVerbatim ("1") marks a publication whose Data is the message
	// itself, to be delivered as it was given rather than as an event
	// payload: ActionCable's received() gets Data (not {"event","data"}),
	// Centrifugo's publication data is Data (not {"type","data"}), and
	// Pusher clients get Data as the event's data, under Message.Event.
	// The ActionCable broadcast endpoint (AnyCable's /_broadcast) sets it.
	TagVerbatim = "verbatim"
)

// Verbatim reports whether m is delivered as given (TagVerbatim).
func (m *Message) Verbatim() bool { return m.Tags[TagVerbatim] == "1" }
