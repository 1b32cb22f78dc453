//go:build !linux

package gateway

import (
	"net"

	"github.com/gorilla/websocket"
)

// Without epoll every connection is read by a goroutine (socket.go).
func servePolled(*websocket.Conn, *Writer, ReadConfig, *Inbox) bool { return false }

func shutdownFD(net.Conn) bool { return false }
