package gossip

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hostmesh/hostmesh/fsm"
)

// record is one host's facts at one version: the unit that gossip, pulls and
// push/pull exchange. The highest version per host wins.
type record struct {
	Name    string        `json:"n"`
	Version uint64        `json:"v"`
	Facts   fsm.HostFacts `json:"f"`
	// Leaving marks the last record of a host that left on purpose; it
	// lets peers that missed the leave notice correct "dead" to "left".
	Leaving bool `json:"l,omitempty"`
}

// want asks a host for the record of Name at Version or later; the answer
// goes back to From at Addr over TCP.
type want struct {
	From    string `json:"from"`
	Addr    string `json:"addr"`
	Name    string `json:"n"`
	Version uint64 `json:"v"`
}

// Message kinds, the first byte of every user message this package sends.
const (
	kindRecord byte = 1 // a gossiped record: re-gossip it when new
	kindWant   byte = 2 // a pull request
	kindState  byte = 3 // push/pull state: every live record
	kindReply  byte = 4 // a pulled record, sent to one host over TCP
)

// maxGossipRecord is the largest encoded record sent by UDP gossip. It leaves
// room in memberlist's 1400-byte packets for its own messages, framing and
// encryption; larger records are pulled over TCP instead.
const maxGossipRecord = 1100

// maxDecoded bounds decompression so a corrupt or hostile message cannot
// exhaust memory (100 hosts of large facts stay far below).
const maxDecoded = 16 << 20

// encodeCompressed frames v as kind + deflated JSON. Facts are mostly
// repeated words (CPU flags, network names), so deflate usually shrinks
// them by half or more, letting typical records ride UDP gossip.
func encodeCompressed(kind byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(kind)
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeCompressed reverses encodeCompressed for the payload after the kind.
func decodeCompressed(payload []byte, v any) error {
	zr := flate.NewReader(bytes.NewReader(payload))
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
	if err != nil {
		return fmt.Errorf("inflate: %w", err)
	}
	if len(data) > maxDecoded {
		return fmt.Errorf("inflated message exceeds %d bytes", maxDecoded)
	}
	return json.Unmarshal(data, v)
}

func encodeRecord(kind byte, r record) ([]byte, error) {
	b, err := encodeCompressed(kind, r)
	if err != nil {
		return nil, fmt.Errorf("encode facts of %q v%d: %w", r.Name, r.Version, err)
	}
	return b, nil
}

func decodeRecord(payload []byte) (record, error) {
	var r record
	if err := decodeCompressed(payload, &r); err != nil {
		return record{}, fmt.Errorf("decode facts record: %w", err)
	}
	if r.Name == "" {
		return record{}, errors.New("decode facts record: no host name")
	}
	return r, nil
}

func encodeWant(w want) ([]byte, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode pull of %q: %w", w.Name, err)
	}
	return append([]byte{kindWant}, b...), nil
}

func decodeWant(payload []byte) (want, error) {
	var w want
	if err := json.Unmarshal(payload, &w); err != nil {
		return want{}, fmt.Errorf("decode pull request: %w", err)
	}
	return w, nil
}

// meta is the tiny summary carried in memberlist node metadata: the version
// of the host's facts, whether its record is too big for UDP gossip, and
// whether the host is leaving. Peers learn of every update through it even if
// the record itself was lost.
//
// Leaving exists because memberlist cannot tell its event delegate whether a
// node left or failed: the Node passed to NotifyLeave never has its State set
// (nodeState shadows Node.State). Like Serf, the agent announces its intent
// before memberlist's leave, and peers classify the departure by it.
type meta struct {
	Version uint64
	Big     bool
	Leaving bool
}

const metaFormat = 1

func (m meta) encode() []byte {
	b := make([]byte, 2, 2+binary.MaxVarintLen64)
	b[0] = metaFormat
	if m.Big {
		b[1] |= 1
	}
	if m.Leaving {
		b[1] |= 2
	}
	return binary.AppendUvarint(b, m.Version)
}

// decodeMeta returns ok=false for metadata it does not understand (an empty
// or future format), which callers treat as "no version known".
func decodeMeta(b []byte) (meta, bool) {
	if len(b) < 3 || b[0] != metaFormat {
		return meta{}, false
	}
	v, n := binary.Uvarint(b[2:])
	if n <= 0 {
		return meta{}, false
	}
	return meta{Version: v, Big: b[1]&1 != 0, Leaving: b[1]&2 != 0}, true
}
