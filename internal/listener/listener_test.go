package listener_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchboard/internal/listener"
)

func listen(t *testing.T, wait time.Duration) net.Listener {
	return listenMax(t, wait, listener.MaxSilent)
}

func listenMax(t *testing.T, wait time.Duration, maxSilent int) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.WaitForDataMax(ln, wait, maxSilent)
	t.Cleanup(func() { l.Close() })
	return l
}

// talkerHandedOver dials l, sends a byte and checks that this connection
// is the next one Accept returns.
func talkerHandedOver(t *testing.T, l net.Listener, conns <-chan net.Conn) {
	t.Helper()
	talker := dial(t, l)
	if _, err := talker.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-conns:
		if s.RemoteAddr().String() != talker.LocalAddr().String() {
			t.Fatalf("handed over %s, want the talking client %s", s.RemoteAddr(), talker.LocalAddr())
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the talking client was not handed over")
	}
}

func dial(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accepted collects what Accept returns until it fails.
func accepted(l net.Listener) (<-chan net.Conn, <-chan error) {
	conns, errs := make(chan net.Conn, 8), make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				errs <- err
				return
			}
			conns <- c
		}
	}()
	return conns, errs
}

// closedByServer reports whether the server closed c within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset"))
}

func TestWaitForData(t *testing.T) {
	t.Run("a connection is handed over once it has data, which is left unread", func(t *testing.T) {
		l := listen(t, 5*time.Second)
		conns, _ := accepted(l)
		c := dial(t, l)
		select {
		case <-conns:
			t.Fatal("handed over before any data")
		case <-time.After(150 * time.Millisecond):
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-conns:
			got := make([]byte, 5)
			_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(s, got); err != nil || string(got) != "hello" {
				t.Fatalf("read %q, %v; want hello", got, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("not handed over after its data")
		}
	})

	t.Run("a silent connection is closed after the wait and never handed over", func(t *testing.T) {
		l := listen(t, 200*time.Millisecond)
		conns, _ := accepted(l)
		silent := dial(t, l)
		if !closedByServer(silent, 2*time.Second) {
			t.Fatal("a silent connection was not closed after the wait")
		}
		talkerHandedOver(t, l, conns)
		select {
		case s := <-conns:
			t.Fatalf("handed over %s as well", s.RemoteAddr())
		case <-time.After(100 * time.Millisecond):
		}
	})

	t.Run("a connection closed before it sent anything is never handed over", func(t *testing.T) {
		l := listen(t, 5*time.Second)
		conns, _ := accepted(l)
		quitter := dial(t, l)
		quitter.Close()
		select {
		case s := <-conns:
			t.Fatalf("handed over %s, which sent nothing", s.RemoteAddr())
		case <-time.After(300 * time.Millisecond):
		}
	})

	t.Run("past the cap, the longest-silent connection is closed", func(t *testing.T) {
		l := listenMax(t, time.Minute, 2)
		conns, _ := accepted(l)
		var silent []net.Conn
		for range 3 {
			silent = append(silent, dial(t, l))
			time.Sleep(50 * time.Millisecond) // accepted, in this order
		}
		if !closedByServer(silent[0], 2*time.Second) {
			t.Fatal("the first of 3 silent connections was not closed at a cap of 2")
		}
		for i, c := range silent[1:] {
			if closedByServer(c, 200*time.Millisecond) {
				t.Fatalf("silent connection %d closed under the cap", i+2)
			}
		}
		talkerHandedOver(t, l, conns)
	})

	t.Run("Close ends Accept and closes the silent connections", func(t *testing.T) {
		l := listen(t, time.Minute)
		_, errs := accepted(l)
		silent := dial(t, l)
		time.Sleep(50 * time.Millisecond) // accepted by the kernel and the listener
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Accept still blocked after Close")
		}
		if !closedByServer(silent, 2*time.Second) {
			t.Fatal("a silent connection outlived Close")
		}
	})
}

// Behind net/http: a connection opened early and used later is served
// (without the listener, ReadHeaderTimeout closes it first and its request
// fails with EOF); a request whose header stalls is still cut off.
func TestWaitForDataBehindHTTPServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.WaitForData(ln, 5*time.Second)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 200 * time.Millisecond,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	const request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
	for _, tc := range []struct {
		name       string
		first      string // sent at once
		rest       string // sent after the pause
		pause      time.Duration
		wantStatus string // "" : the server closes the connection
	}{
		{"opened early, request later", "", request, 600 * time.Millisecond, "HTTP/1.1 200 OK"},
		{"request at once", request, "", 0, "HTTP/1.1 200 OK"},
		{"header stalls past ReadHeaderTimeout", "POST / HTTP/1.1\r\nHost: x\r\n", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, l)
			if tc.first != "" {
				if _, err := io.WriteString(c, tc.first); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(tc.pause)
			if tc.rest != "" {
				if _, err := io.WriteString(c, tc.rest); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if tc.wantStatus == "" {
				if err == nil {
					t.Fatalf("answered %q, want the connection closed", line)
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the stalled request was never cut off")
				}
				return
			}
			if err != nil || strings.TrimSpace(line) != tc.wantStatus {
				t.Fatalf("status line %q, %v; want %q", line, err, tc.wantStatus)
			}
		})
	}
}
