package gateway

import "strings"

// ConsoleBus returns a bus beside the cluster bus (see Bus) for the debug
// console's own traffic: watch leases, the lines a node's tap saw while a
// console somewhere in the cluster watches, and each node's state. It is a
// subject of its own so the peers never read it (and the console never
// reads theirs); nothing is sent on it while no console is open.
func (b *NATSBroker) ConsoleBus() Bus {
	return &natsBus{nc: b.nc, subject: strings.TrimSuffix(b.subject, ".events") + ".console"}
}
