package node

import "github.com/prometheus/client_golang/prometheus"

// registerTransportMetrics exports the Raft listener's refusals: a
// connection refused at the TLS handshake (no certificate, another CA's,
// expired, an operator's) or an RPC whose claimed sender is not the
// certificate's host. Either is someone knocking who should not be.
func registerTransportMetrics(reg *prometheus.Registry, n *Node) {
	for reason, read := range map[string]func(t *raftTransport) uint64{
		"handshake": (*raftTransport).RefusedHandshakes,
		"sender":    (*raftTransport).RefusedSenders,
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "hostmesh_raft_refused_total",
			Help:        "Raft connections refused at the TLS handshake (reason=handshake) and RPCs refused because their sender is not the certificate's host (reason=sender).",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 {
			if n.transport == nil {
				return 0
			}
			return float64(read(n.transport))
		}))
	}
}

// RaftRefusals counts what the Raft listener refused: connections at the
// TLS handshake, and RPCs whose sender was not the certificate's host.
func (n *Node) RaftRefusals() (handshakes, senders uint64) {
	if n.transport == nil {
		return 0, 0
	}
	return n.transport.RefusedHandshakes(), n.transport.RefusedSenders()
}
