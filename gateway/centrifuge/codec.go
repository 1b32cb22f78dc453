package centrifuge

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/centrifugal/protocol"
)

// DefaultMaxFrameSize is Centrifugo's client message size limit (64 KB).
const DefaultMaxFrameSize = 64 << 10

// Frame decoding errors. Each one closes the connection with 3501 bad
// request, as Centrifugo does; none of them can panic.
var (
	ErrEmptyFrame     = errors.New("centrifuge: empty frame")
	ErrFrameTooLarge  = errors.New("centrifuge: frame exceeds the size limit")
	ErrMalformedFrame = errors.New("centrifuge: malformed command")
)

// DecodeCommands splits one WebSocket text frame into its commands. A frame
// holds one or more JSON commands separated by single '\n' characters; one
// trailing '\n' is tolerated, empty lines are not (centrifuge-js joins
// commands with '\n' and never sends empty ones). Frames longer than max
// bytes are refused before any parsing (max <= 0 means
// DefaultMaxFrameSize).
//
// The returned commands alias frame (the protocol decoder is zero-copy for
// strings): frame must not be reused while they are in use.
func DecodeCommands(frame []byte, max int) ([]*protocol.Command, error) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	if len(frame) > max {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrFrameTooLarge, len(frame), max)
	}
	if len(bytes.TrimSpace(frame)) == 0 {
		return nil, ErrEmptyFrame
	}
	if bytes.Contains(frame, []byte("\n\n")) || frame[0] == '\n' {
		return nil, fmt.Errorf("%w: empty line in batch", ErrMalformedFrame)
	}
	n := bytes.Count(frame, []byte("\n")) + 1
	if frame[len(frame)-1] == '\n' {
		n--
	}
	cmds := make([]*protocol.Command, 0, n)
	dec := protocol.NewJSONCommandDecoder(frame)
	for {
		cmd, err := decodeOne(dec)
		if cmd != nil {
			cmds = append(cmds, cmd)
		}
		if errors.Is(err, io.EOF) {
			return cmds, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: command %d: %v", ErrMalformedFrame, len(cmds)+1, err)
		}
	}
}

// decodeOne shields the connection from a decoder panic on hostile input:
// a bad frame must cost the sender its connection, never the process.
func decodeOne(dec *protocol.JSONCommandDecoder) (cmd *protocol.Command, err error) {
	defer func() {
		if p := recover(); p != nil {
			cmd, err = nil, fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return dec.Decode()
}

// isPong reports whether cmd is the empty command `{}` a client sends in
// answer to a server ping.
func isPong(cmd *protocol.Command) bool {
	return cmd.Id == 0 && cmd.Connect == nil && cmd.Subscribe == nil && cmd.Unsubscribe == nil &&
		cmd.Publish == nil && cmd.Presence == nil && cmd.PresenceStats == nil && cmd.History == nil &&
		cmd.Ping == nil && cmd.Send == nil && cmd.Rpc == nil && cmd.Refresh == nil && cmd.SubRefresh == nil
}

var replyEncoder = protocol.NewJSONReplyEncoder()

// pingFrame is the server ping (and nothing else): a reply with no id and no
// push.
var pingFrame = []byte("{}")

// encodeReply encodes r. Payloads come from our own JSON validation, so a
// failure is a bug; it is returned, not panicked on.
func encodeReply(r *protocol.Reply) ([]byte, error) {
	b, err := replyEncoder.Encode(r)
	if err != nil {
		return nil, fmt.Errorf("centrifuge: encode reply: %w", err)
	}
	return b, nil
}

// errorReply answers command id with a protocol error.
func errorReply(id uint32, e *protocol.Error) *protocol.Reply {
	return &protocol.Reply{Id: id, Error: e}
}

// Client error codes (replies), from centrifuge errors.go.
var (
	errInternal          = &protocol.Error{Code: 100, Message: "internal server error", Temporary: true}
	errUnknownChannel    = &protocol.Error{Code: 102, Message: "unknown channel"}
	errPermissionDenied  = &protocol.Error{Code: 103, Message: "permission denied"}
	errMethodNotFound    = &protocol.Error{Code: 104, Message: "method not found"}
	errAlreadySubscribed = &protocol.Error{Code: 105, Message: "already subscribed"}
	errLimitExceeded     = &protocol.Error{Code: 106, Message: "limit exceeded"}
	errBadRequest        = &protocol.Error{Code: 107, Message: "bad request"}
	errNotAvailable      = &protocol.Error{Code: 108, Message: "not available"}
	errTokenExpired      = &protocol.Error{Code: 109, Message: "token expired"}
	errUnrecoverable     = &protocol.Error{Code: 112, Message: "unrecoverable position"}
)

// Disconnect is a WebSocket close code and reason. 3000–3499 make
// centrifuge-js reconnect; 3500–3999 are terminal.
type Disconnect struct {
	Code   int
	Reason string
}

// Disconnect codes, from centrifuge disconnect.go.
var (
	DisconnectShutdown        = Disconnect{3001, "shutdown"}
	DisconnectExpired         = Disconnect{3005, "connection expired"}
	DisconnectSubExpired      = Disconnect{3006, "subscription expired"}
	DisconnectSlow            = Disconnect{3008, "slow"}
	DisconnectInsufficient    = Disconnect{3010, "insufficient state"}
	DisconnectForceReconnect  = Disconnect{3011, "force reconnect"}
	DisconnectNoPong          = Disconnect{3012, "no pong"}
	DisconnectInvalidToken    = Disconnect{3500, "invalid token"}
	DisconnectBadRequest      = Disconnect{3501, "bad request"}
	DisconnectStale           = Disconnect{3502, "stale"}
	DisconnectForce           = Disconnect{3503, "force disconnect"}
	DisconnectConnectionLimit = Disconnect{3504, "connection limit"}
)

// reconnects reports whether centrifuge-js reconnects after close code
// (disconnect.go: 3000-3499, 4000-4499 and from 5000 on).
func reconnects(code int) bool {
	return code >= 3000 && code < 3500 || code >= 4000 && code < 4500 || code >= 5000
}

// Unsubscribe push codes: below 2500 the client stays unsubscribed, from
// 2500 on it resubscribes.
const (
	unsubscribeServer = 2000 // "server unsubscribe"
)
