package node

import (
	"time"

	"github.com/hashicorp/raft"
)

// raftTiming is meshd's Raft pacing by suffrage. Voters keep sub-second
// failure detection (a failover under 2 s); non-voters, which never stand
// for election, wait longer before they forget their leader, so that the
// leader can send each of them one message per paceEvery instead of ~27
// per second (transport_pace.go). Their timeout is three paced periods:
// two lost messages in a row do not make a non-voter drop its leader.
type raftTiming struct {
	voterHeartbeat, voterElection time.Duration
	nonvoterTimeout               time.Duration
	paceEvery, paceGrace          time.Duration
	// suffragePoll is how often a host checks whether it is a voter; the
	// leader paces a new non-voter only paceGrace after it saw it as one,
	// so a host has switched to the longer timeout by then.
	suffragePoll time.Duration
}

func timingFor(fast bool) raftTiming {
	if fast {
		return raftTiming{voterHeartbeat: 300 * time.Millisecond, voterElection: 300 * time.Millisecond,
			nonvoterTimeout: 1 * time.Second, paceEvery: 200 * time.Millisecond, paceGrace: 600 * time.Millisecond,
			suffragePoll: 100 * time.Millisecond}
	}
	return raftTiming{voterHeartbeat: 500 * time.Millisecond, voterElection: 500 * time.Millisecond,
		nonvoterTimeout: 3 * time.Second, paceEvery: 1 * time.Second, paceGrace: 3 * time.Second,
		suffragePoll: 1 * time.Second}
}

// watchSuffrage gives this host's Raft the timeouts of its suffrage, as
// the configuration changes (a host joins as a non-voter and may be
// promoted later). A leader is always a voter.
func (n *Node) watchSuffrage() {
	tm := n.timing
	tick := time.NewTicker(tm.suffragePoll)
	defer tick.Stop()
	voter := true // openRaft starts with the voters' timeouts
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		f := n.raft.GetConfiguration()
		if f.Error() != nil {
			continue
		}
		is, known := false, false
		for _, s := range f.Configuration().Servers {
			if s.ID == raft.ServerID(n.cfg.Name) {
				is, known = s.Suffrage == raft.Voter, true
			}
		}
		if !known || is == voter {
			continue
		}
		rc := n.raft.ReloadableConfig()
		if is {
			rc.HeartbeatTimeout, rc.ElectionTimeout = tm.voterHeartbeat, tm.voterElection
		} else {
			rc.HeartbeatTimeout, rc.ElectionTimeout = tm.nonvoterTimeout, tm.nonvoterTimeout
		}
		if err := n.raft.ReloadConfig(rc); err != nil {
			n.log.Warn("raft timeouts for this host's suffrage", "voter", is, "err", err)
			continue
		}
		voter = is
	}
}

// paceNonvoters tells the transport which followers are non-voters now
// (the leader calls it whenever it read the configuration).
func (n *Node) paceNonvoters(cfg []raft.Server) {
	if n.transport.pace == nil {
		return
	}
	var ids []raft.ServerID
	for _, s := range cfg {
		if s.Suffrage != raft.Voter && s.ID != raft.ServerID(n.cfg.Name) {
			ids = append(ids, s.ID)
		}
	}
	n.transport.pace.setNonvoters(ids)
	n.transport.dropPaced()
}

// paceLeading starts the pacing of a new leader: the entries its log holds
// are committed once its barrier returned, and its followers' suffrage is
// read from the configuration.
func (n *Node) paceLeading() {
	if n.transport.pace == nil {
		return
	}
	n.transport.pace.leading(n.raft.LastIndex())
	if cfg, err := n.raftConfig(); err == nil {
		n.paceNonvoters(cfg)
	}
}

// PacedRPCs counts the Raft RPCs this host held back while leading an idle
// mesh (transport_pace.go).
func (n *Node) PacedRPCs() uint64 {
	if n.transport == nil || n.transport.pace == nil {
		return 0
	}
	return n.transport.pace.held.Load()
}
