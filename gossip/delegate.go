package gossip

import (
	"fmt"

	"github.com/hashicorp/memberlist"
)

// delegate plugs the facts records into memberlist: metadata, gossip
// broadcasts, user messages and push/pull state.
type delegate struct{ a *Agent }

// NodeMeta advertises the own facts version (see meta).
func (d *delegate) NodeMeta(limit int) []byte {
	a := d.a
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.members[a.name].rec.Version
	a.metaPublished = v
	a.bootPublished = true
	m := meta{Version: v, Big: a.selfBig, Leaving: a.members[a.name].rec.Leaving, Boot: a.boot}.encode()
	if len(m) > limit {
		// Cannot happen (meta is at most 22 bytes, memberlist allows 512),
		// but memberlist panics on oversized metadata.
		return nil
	}
	return m
}

// NotifyMsg handles gossiped records, pull requests and pulled records.
// The buffer is reused by memberlist after return; decoding copies it.
func (d *delegate) NotifyMsg(b []byte) {
	a := d.a
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case kindRecord, kindReply:
		h, err := peekRecord(b[1:])
		if err != nil {
			a.reject(&a.rejected, fmt.Errorf("%w: %v", ErrInvalid, err))
			return
		}
		if !a.isNews(h) {
			return
		}
		r, err := h.record()
		if err != nil {
			a.reject(&a.rejected, fmt.Errorf("%w: %v", ErrInvalid, err))
			return
		}
		// Keep the bytes as a kindRecord message to re-gossip and to answer
		// pulls without encoding again.
		raw := append([]byte(nil), b...)
		raw[0] = kindRecord
		a.mergeRecord(r, raw, b[0] == kindRecord)
	case kindWant:
		w, err := decodeWant(b[1:])
		if err == nil {
			err = validateWant(w)
		}
		if err != nil {
			a.reject(&a.rejected, fmt.Errorf("%w: pull request: %v", ErrInvalid, err))
			return
		}
		a.answerWant(w)
	default:
		a.log.Debug("unknown message kind", "kind", b[0])
	}
}

// GetBroadcasts hands memberlist the queued records that fit in a packet.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.a.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends every record of a host not known to be dead, so one
// push/pull brings a late joiner, or a host that missed gossip, up to date.
// Records of hosts that left go too: they correct peers that took the leave
// for a failure.
func (d *delegate) LocalState(join bool) []byte {
	a := d.a
	a.mu.Lock()
	recs := make([]record, 0, len(a.members))
	for _, e := range a.members {
		if e.have && e.status != StatusDead {
			recs = append(recs, e.rec)
		}
	}
	a.mu.Unlock()
	b, err := encodeCompressed([]byte{kindState}, recs)
	if err != nil {
		a.log.Error("cannot encode push/pull state", "error", err)
		return nil
	}
	return b
}

// MergeRemoteState merges a peer's records, keeping the highest version of
// each host.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	a := d.a
	if len(buf) == 0 || buf[0] != kindState {
		return
	}
	recs, err := decodeState(buf[1:])
	if err != nil {
		a.reject(&a.rejected, err)
		return
	}
	for _, r := range recs {
		a.mergeRecord(r, nil, false)
	}
}

// factsBroadcast is one host's record in the gossip queue. A newer record of
// the same host replaces an older one still queued.
type factsBroadcast struct {
	host string
	msg  []byte
}

func (b *factsBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*factsBroadcast)
	return ok && o.host == b.host
}

// Name lets the queue replace by host in O(log n).
func (b *factsBroadcast) Name() string    { return "facts/" + b.host }
func (b *factsBroadcast) Message() []byte { return b.msg }
func (b *factsBroadcast) Finished()       {}
