// Package faultproxy is a TCP proxy for tests that cut the path to a real
// server the way networks fail: a partition (bytes stop flowing, nothing is
// reset) or a reset (every connection is torn down with RST). The shared
// server itself is never touched.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

type mode int

const (
	pass mode = iota
	partition
	reset
)

// Proxy forwards connections on Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	mode  mode
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Partition stops every byte in both directions, on open and new
// connections, without closing or resetting anything: peers wait until
// their own timeouts fire.
func (p *Proxy) Partition() { p.set(partition) }

// Reset tears down every open connection with RST and resets new ones.
func (p *Proxy) Reset() {
	p.set(reset)
	p.mu.Lock()
	for c := range p.conns {
		abort(c)
	}
	p.mu.Unlock()
}

// Pass lets bytes flow again (held bytes go on).
func (p *Proxy) Pass() { p.set(pass) }

func (p *Proxy) set(m mode) {
	p.mu.Lock()
	p.mode = m
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		m := p.mode
		p.mu.Unlock()
		if m == reset {
			abort(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			abort(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst, holding each chunk while the path is cut.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.mode == partition {
				p.cond.Wait()
			}
			m := p.mode
			p.mu.Unlock()
			if m == reset {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				abort(dst)
			}
			return
		}
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Reset()
	p.Pass()
	p.wg.Wait()
}

// abort closes c with RST instead of FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
