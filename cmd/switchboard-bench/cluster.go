package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"switchboard/bench/load"
)

// cluster measures cross-node fan-out: clusterSubs subscribers spread over
// three nodes sharing one NATS server (and one PostgreSQL schema), events
// written through the first node; the same load on one node on PostgreSQL
// (the single-node figure the target compares with); and the reference:
// three peer nodes on the centrifuge library's Redis broker.
func (r *runner) cluster(ctx context.Context) error {
	subs, rate := r.o.clusterSubs, r.o.clusterRate
	size := fmt.Sprintf("%d×%g/s", subs, rate)

	single, err := startSwitchboard(ctx, startOpts{bin: r.o.bin, store: "postgres", pgURL: r.o.pgURL, logLevel: "warn"})
	if err != nil {
		return err
	}
	r.add(r.measureSpread(ctx, []*server{single}, load.Pusher, "cluster "+size+", 1 node", "switchboard/pusher", subs, rate))
	single.stop()

	natsURL, stopNATS, err := startNATSServer()
	if err != nil {
		return err
	}
	defer stopNATS()
	dsn, drop, err := newSchema(r.o.pgURL)
	if err != nil {
		return err
	}
	defer drop()
	var nodes []*server
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for i := 0; i < 3; i++ {
		n, err := startSwitchboard(ctx, startOpts{bin: r.o.bin, store: "postgres", pgURL: r.o.pgURL, logLevel: "warn",
			dsn: dsn, project: i == 0, env: []string{"SWITCHBOARD_NATS_URL=" + natsURL}})
		if err != nil {
			return fmt.Errorf("cluster node %d: %w", i+1, err)
		}
		nodes = append(nodes, n)
	}
	r.add(r.measureSpread(ctx, nodes, load.Pusher, "cluster "+size+", 3 nodes", "switchboard/pusher", subs, rate))
	for _, n := range nodes {
		n.stop()
	}
	nodes = nil

	if r.o.redis == "" {
		return nil
	}
	var peers []*server
	defer func() {
		for _, p := range peers {
			p.stop()
		}
	}()
	for i := 0; i < 3; i++ {
		p, err := startPeer(ctx, "-redis", r.o.redis)
		if err != nil {
			r.notes = append(r.notes, "cluster: peer on Redis "+r.o.redis+" did not start: "+err.Error())
			return nil
		}
		peers = append(peers, p)
	}
	r.add(r.measureSpread(ctx, peers, load.Centrifugo, "cluster "+size+", 3 nodes", "peer/centrifugo+redis", subs, rate))
	return nil
}

// measureSpread connects subs subscribers spread evenly over nodes,
// publishes through the first node for the fan-out duration and returns the
// row (server CPU and RSS are the first node's).
func (r *runner) measureSpread(ctx context.Context, nodes []*server, proto load.Protocol, scenario, name string, subs int, rate float64) row {
	pools := make([]*load.Pool, len(nodes))
	for i, n := range nodes {
		pools[i] = &load.Pool{Target: n.target(proto, channelMain), Dialer: load.NewDialer(r.o.sourceIPs)}
		defer pools[i].Close()
		want := subs / len(nodes)
		if i < subs%len(nodes) {
			want++
		}
		if _, err := pools[i].Ensure(ctx, want, r.o.dialParallel); err != nil {
			r.log.Error("connect", "server", name, "node", i+1, "err", err)
		}
	}
	time.Sleep(time.Second)
	alive := 0
	for _, p := range pools {
		alive += p.Alive()
	}
	d := r.o.duration
	rec := load.NewRecorder(int(rate*d.Seconds()*1.2) + 16)
	for _, p := range pools {
		p.Rec.Store(rec)
	}
	pub := nodes[0].publisher()
	m := load.StartMeter(nodes[0].pid())
	mark := nodes[0].logMark()
	r.log.Info("cluster", "server", name, "nodes", len(nodes), "subs", alive, "rate", rate)
	t0 := time.Now()
	attempted := pub.Open(ctx, rec, rate, d, 1024)
	time.Sleep(r.o.drain)
	u := m.Stop()
	after := 0
	for _, p := range pools {
		p.Rec.Store(nil)
		after += p.Alive()
	}
	res := rec.Result(alive)
	x := row{scenario: scenario, server: name, subs: alive, rate: rate, attempted: attempted, res: res, use: u,
		pubErrs: pub.Errors.Load(), skipped: pub.Skipped.Load(), alive: after, want: subs}
	r.publishErrors(&x, pub, nodes[0], mark, t0)
	if after < alive {
		x.note = append(x.note, fmt.Sprintf("%d clients dropped", alive-after))
	}
	if len(nodes) > 1 {
		x.note = append(x.note, fmt.Sprintf("%d nodes; server columns are the publishing node's", len(nodes)))
	}
	return x
}

// startNATSServer runs nats-server with JetStream on a free port.
func startNATSServer() (url string, stop func(), err error) {
	bin := "/usr/sbin/nats-server"
	if p, err := exec.LookPath("nats-server"); err == nil {
		bin = p
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	dir, err := os.MkdirTemp("", "switchboard-bench-nats-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", dir)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("nats-server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			return "nats://127.0.0.1:" + port, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("nats-server not listening on %s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
