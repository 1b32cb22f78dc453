package gateway

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// frameParser reads the frames a client sends (RFC 6455 §5.2: masked,
// perhaps fragmented, control frames between fragments) from bytes as they
// arrive, for the poller (socket_epoll.go), which has no goroutine to block
// in gorilla's reader. It follows gorilla's reader rule for rule, so both
// read modes answer a client alike: the same protocol errors (1002), the
// same close codes accepted, the size limit checked on frame headers.
type frameParser struct {
	limit  int
	msg    []byte // the fragments of a message in progress
	inMsg  bool   // a data frame without FIN was read
	msgLen int64  // bytes of the message in progress, announced by headers

	// Lingering after a message too big (see Linger): frames are discarded
	// until the client's close, within budget bytes.
	linger bool
	skip   int64 // payload bytes of the current frame still to discard
	budget int64
}

// frameSink receives what frameParser reads. Slices passed to it are only
// valid during the call.
type frameSink interface {
	// message gets a whole data message; false pauses parsing after it
	// (the caller resumes with the bytes feed did not consume).
	message(data []byte) bool
	ping(payload []byte)
	pong()
	// closed gets the client's close frame (code 1005 when it had none).
	closed(code int, text string)
	// protocolError gets a frame that breaks RFC 6455 (close 1002).
	protocolError(reason string)
	// tooBig gets a message over the limit (close 1009; lingering starts).
	tooBig()
}

// feedStatus says why feed returned.
type feedStatus int

const (
	feedMore  feedStatus = iota // b[n:] is the start of an incomplete frame
	feedPause                   // the sink paused; b[n:] is unparsed
	feedStop                    // the read side ends: close, protocol error, linger over
)

const (
	finBit  = 0x80
	rsvBits = 0x70
	maskBit = 0x80
	opCont  = 0x0
	opBin   = 0x2
)

// feed parses the frames in b and returns how many bytes it consumed. It
// unmasks payloads in place.
func (p *frameParser) feed(b []byte, s frameSink) (n int, st feedStatus) {
	for {
		if p.skip > 0 {
			k := int64(len(b) - n)
			if k > p.skip {
				k = p.skip
			}
			p.skip -= k
			n += int(k)
			if p.budget -= k; p.budget <= 0 {
				return n, feedStop
			}
			if p.skip > 0 {
				return n, feedMore
			}
		}
		rest := b[n:]
		if len(rest) < 2 {
			return n, feedMore
		}
		b0, b1 := rest[0], rest[1]
		op, fin := b0&0x0f, b0&finBit != 0
		h, length := 2, int64(b1&0x7f)
		switch length {
		case 126:
			if len(rest) < 4 {
				return n, feedMore
			}
			length, h = int64(binary.BigEndian.Uint16(rest[2:])), 4
		case 127:
			if len(rest) < 10 {
				return n, feedMore
			}
			length, h = int64(binary.BigEndian.Uint64(rest[2:])), 10
		}
		masked := b1&maskBit != 0
		if masked {
			h += 4
		}
		if p.linger {
			// Discard whole frames, without their payload in memory, until
			// the client's close frame (which needs its bytes: read below).
			if op != opClose || length > 125 || length < 0 {
				if len(rest) < h {
					return n, feedMore
				}
				n += h
				p.skip = length
				if length < 0 {
					return n, feedStop
				}
				if p.budget -= int64(h); p.budget <= 0 {
					return n, feedStop
				}
				continue
			}
		} else if reason := p.check(b0, op, fin, masked, length); reason != "" {
			s.protocolError(reason)
			return n, feedStop
		}
		if isData(op) && !p.linger && (length < 0 || p.msgLen+length > int64(p.limit)) {
			s.tooBig()
			p.linger, p.budget = true, lingerBytes
			p.msg, p.inMsg = nil, false
			continue // the lingering branch above discards this frame
		}
		if int64(len(rest)-h) < length {
			return n, feedMore
		}
		payload := rest[h : h+int(length)]
		if masked {
			unmask(rest[h-4:h], payload)
		}
		n += h + int(length)
		switch op {
		case opPing:
			s.ping(payload)
		case opPong:
			s.pong()
		case opClose:
			code, text := CloseNoStatus, ""
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
				text = string(payload[2:])
				if !p.linger {
					if !validReceivedCloseCode(code) {
						s.protocolError("bad close code " + strconv.Itoa(code))
						return n, feedStop
					}
					if !utf8.ValidString(text) {
						s.protocolError("invalid utf8 payload in close frame")
						return n, feedStop
					}
				}
			}
			s.closed(code, text)
			return n, feedStop
		default: // data
			if p.linger {
				continue
			}
			p.msgLen += length
			if !fin {
				p.msg = append(p.msg, payload...)
				p.inMsg = true
				continue
			}
			data := payload
			if p.inMsg {
				data = append(p.msg, payload...)
			}
			p.msg, p.inMsg, p.msgLen = nil, false, 0
			if !s.message(data) {
				return n, feedPause
			}
		}
	}
}

// check returns why a frame header breaks RFC 6455 for a server without
// extensions, in gorilla's words, or "".
func (p *frameParser) check(b0, op byte, fin, masked bool, length int64) string {
	switch {
	case b0&rsvBits != 0:
		return "reserved bits set"
	case op == opClose || op == opPing || op == opPong:
		if length > 125 || length < 0 {
			return "len > 125 for control"
		}
		if !fin {
			return "FIN not set on control"
		}
	case op == opText || op == opBin:
		if p.inMsg {
			return "data before FIN"
		}
	case op == opCont:
		if !p.inMsg {
			return "continuation after FIN"
		}
	default:
		return "bad opcode " + strconv.Itoa(int(op))
	}
	if !masked {
		return "bad MASK"
	}
	return ""
}

func isData(op byte) bool { return op == opText || op == opBin || op == opCont }

// unmask XORs payload with the 4-byte key (RFC 6455 §5.3).
func unmask(key, payload []byte) {
	if len(payload) >= 8 {
		k4 := binary.LittleEndian.Uint32(key)
		k8 := uint64(k4) | uint64(k4)<<32
		for len(payload) >= 8 {
			binary.LittleEndian.PutUint64(payload, binary.LittleEndian.Uint64(payload)^k8)
			payload = payload[8:]
		}
	}
	for i := range payload {
		payload[i] ^= key[i&3]
	}
}

// CloseNoStatus is the code of a close frame without one (RFC 6455
// §7.1.5, 1005: never sent on the wire).
const CloseNoStatus = 1005

// validReceivedCloseCode is gorilla's list (RFC 6455 §7.4 and the IANA
// registry): codes a client may send.
func validReceivedCloseCode(code int) bool {
	switch code {
	case 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}
