package load

import (
	"encoding/binary"
	"net"
)

// framedConn hands gorilla/websocket the server's bytes one HTTP response or
// one WebSocket frame at a time, never past a boundary. gorilla reads
// through a bufio.Reader; with this conn underneath, that buffer is empty
// whenever gorilla has returned a whole message, so after the handshake the
// reading can move to the client poller (poll_linux.go) with every byte the
// socket gave so far either consumed by gorilla or still here (leftover).
type framedConn struct {
	net.Conn
	store []byte // buf's backing array, reused once buf is empty
	buf   []byte // read from the socket, not yet handed out
	// through: the handshake is over and gorilla goes on reading (the
	// goroutine reader): no boundaries any more.
	through bool
	ws      bool // past the HTTP response: frames from here on
	left    int  // bytes of the current frame not yet handed out
	crlf    int  // bytes of "\r\n\r\n" just handed out, in the response
}

func (c *framedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.through && len(c.buf) == 0 {
		return c.Conn.Read(p)
	}
	if len(c.buf) == 0 {
		if err := c.more(); err != nil {
			return 0, err
		}
	}
	limit := len(c.buf)
	switch {
	case c.through:
	case !c.ws:
		// The end of the response may straddle two reads, so the match
		// state carries over; only bytes handed out advance it.
		limit = min(len(p), len(c.buf))
		for i, b := range c.buf[:limit] {
			switch {
			case b == "\r\n\r\n"[c.crlf]:
				c.crlf++
			case b == '\r':
				c.crlf = 1
			default:
				c.crlf = 0
			}
			if c.crlf == 4 {
				limit = i + 1
				c.ws = true
				break
			}
		}
	default:
		if c.left == 0 {
			// A new frame: its length is in the header, which may need
			// more bytes than this read brought.
			for {
				_, n, ok := frameLen(c.buf)
				if ok {
					c.left = n
					break
				}
				if err := c.more(); err != nil {
					return 0, err
				}
			}
		}
		limit = min(limit, c.left)
	}
	n := copy(p, c.buf[:min(limit, len(c.buf))])
	if c.ws && c.left > 0 {
		c.left -= n
	}
	c.buf = c.buf[n:]
	return n, nil
}

// more appends one socket read to buf.
func (c *framedConn) more() error {
	if len(c.buf) == 0 {
		c.buf = c.store[:0]
	}
	if cap(c.buf)-len(c.buf) < 1024 {
		c.store = make([]byte, 0, max(4096, 2*len(c.buf)+1024))
		c.buf = append(c.store, c.buf...)
	}
	n, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if n > 0 {
		return nil
	}
	return err
}

// leftover returns the bytes read from the socket that gorilla was not
// given, and forgets them.
func (c *framedConn) leftover() []byte {
	b := c.buf
	c.buf, c.store = nil, nil
	return b
}

// frameLen gives the header length and the whole length (header and
// payload) of the frame starting b; ok is false while b holds too little of
// the header to tell.
func frameLen(b []byte) (hdr, n int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	mask := 0
	if b[1]&0x80 != 0 {
		mask = 4 // masked (never from a server, but the length is still known)
	}
	switch l := int(b[1] & 0x7f); l {
	case 126:
		if len(b) < 4 {
			return 0, 0, false
		}
		return 4 + mask, 4 + mask + int(binary.BigEndian.Uint16(b[2:])), true
	case 127:
		if len(b) < 10 {
			return 0, 0, false
		}
		return 10 + mask, 10 + mask + int(min(binary.BigEndian.Uint64(b[2:]), 1<<31)), true
	default:
		return 2 + mask, 2 + mask + l, true
	}
}
