// Package gossip keeps every meshd's view of the mesh current: who is a
// member, whether it is alive, and the latest HostFacts each host published.
//
// It wraps hashicorp/memberlist (SWIM). Facts do not fit in memberlist's
// 512-byte node metadata (a CPU flag list alone is larger), so they travel as
// versioned records through the memberlist Delegate:
//
//   - Each host numbers its own facts; Update increments the number. A record
//     replaces a peer's copy only when its version is higher, so records can
//     arrive in any order, through any path, any number of times.
//   - A changed record is gossiped through a TransmitLimitedQueue when it fits
//     in a UDP packet; every host that learns it from gossip re-gossips it, so
//     it spreads epidemically in O(log N) gossip rounds.
//   - The node metadata carries only the facts version (and whether the
//     record is too big to gossip). Peers that see a version they do not have
//     pull the record from its owner over TCP: at once for big records; for
//     small ones after a short grace period and only once the puller has
//     nothing left to gossip, which repairs lost UDP packets without adding
//     TCP load while gossip is still flowing.
//   - LocalState/MergeRemoteState exchange every live host's record during
//     memberlist's push/pull, so late joiners and hosts that missed broadcasts
//     converge anyway.
//   - If a host restarts and its counter starts again from 1, peers still hold
//     its old, higher version; when that stale record comes back to its owner
//     the owner jumps its counter above it and republishes (the way memberlist
//     refutes old incarnations), so a restart never loses to stale facts.
//
// Everything received is checked before it is stored (validate.go): names,
// capacities and list sizes by the replicated state's own rules, addresses
// that parse, versions within 1..MaxVersion, push/pull states of bounded
// size. Invalid input is dropped and counted (Agent.Stats). Versions are
// ordered numerically, equal versions by the records' canonical form, so
// every host keeps the same record whatever order copies arrive in. A record
// may not win on version alone: one far ahead (maxLead) of the version its
// owner advertises in memberlist metadata is refused, and discarded if held,
// and the owner never refutes such a record of itself, so neither a forged
// record at the top version nor the old refute overflow can pin a host's
// facts for good. Entries of hosts dead or left for Config.ReapAfter, or
// never seen alive, are pruned.
//
// Failure detection is memberlist's. With Config.Fast (loopback, tests) a
// stopped host is declared dead in about 1-2 s (probe every 200 ms, 100 ms
// probe timeout, suspicion 3 × probe interval, at most twice that without
// confirmations). With the default LAN settings (probe every 1 s, 500 ms
// timeout, suspicion 4 × log10(N) s, up to 6× that without confirmations) it
// takes about 5-10 s in a cluster of up to ten hosts and up to ~30 s in bad
// cases; memberlist trades speed for few false positives there.
//
// memberlist reports a member's leaving through one callback whether it left
// gracefully or failed; the package looks at the node's state to emit
// EventLeft or EventFailed. memberlist gives no race-free view of the
// "suspect" state, so members are reported alive until declared dead or left.
package gossip
