package gateway

import "sync"

// Inbox runs a connection's incoming commands in order on a short-lived
// goroutine. The goroutine that blocks reading the socket then never runs
// command handling (JSON, auth, the hub), so its stack stays at the few KB
// the read path needs instead of the 8 KB a subscribe grows it to, and
// every idle connection is smaller by that much (the runtime keeps a grown
// stack while a goroutine is blocked). Commands are rare next to reads, so
// a goroutine per burst of commands costs nothing measurable.
type Inbox struct {
	handle  func([]byte)
	mu      sync.Mutex
	queue   [][]byte
	running bool
	idle    chan struct{} // closed when the current handler goroutine exits
}

// inboxMax is how many commands may wait; a client sending faster than
// they are handled has its reads paused (TCP then pushes back on it).
const inboxMax = 32

// NewInbox returns an idle inbox handing each command to handle.
func NewInbox(handle func([]byte)) *Inbox { return &Inbox{handle: handle} }

// Push queues a command, starting a handler goroutine when none runs. It
// waits while inboxMax commands are pending.
func (b *Inbox) Push(msg []byte) {
	b.mu.Lock()
	for len(b.queue) >= inboxMax && b.running {
		idle := b.idle
		b.mu.Unlock()
		<-idle
		b.mu.Lock()
	}
	b.queueLocked(msg)
	b.mu.Unlock()
}

func (b *Inbox) run(idle chan struct{}) {
	defer close(idle)
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running = false
			// An idle connection keeps no buffer, nor the channel (96
			// bytes; Wait and Push read it only while running).
			b.queue, b.idle = nil, nil
			b.mu.Unlock()
			return
		}
		msg := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.mu.Unlock()
		b.handle(msg)
	}
}

// Wait returns once every command pushed so far has been handled.
func (b *Inbox) Wait() {
	for {
		b.mu.Lock()
		running, idle := b.running, b.idle
		b.mu.Unlock()
		if !running {
			return
		}
		<-idle
	}
}

// TryPush queues a command like Push, but returns false instead of
// waiting when inboxMax commands are pending (the poller, which serves many
// connections from one goroutine, must not wait for one of them).
func (b *Inbox) TryPush(msg []byte) bool {
	b.mu.Lock()
	if len(b.queue) >= inboxMax && b.running {
		b.mu.Unlock()
		return false
	}
	b.queueLocked(msg)
	b.mu.Unlock()
	return true
}

// queueLocked appends msg and starts a handler goroutine when none runs.
// The caller holds mu.
func (b *Inbox) queueLocked(msg []byte) {
	b.queue = append(b.queue, msg)
	if !b.running {
		b.running = true
		b.idle = make(chan struct{})
		go b.run(b.idle)
	}
}
