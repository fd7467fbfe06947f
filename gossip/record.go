package gossip

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

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

// Deflate writers allocate about a megabyte of tables each; with a hundred
// agents in one process, creating one per message made the garbage
// collector the busiest part of the mesh. They are pooled and reset.
var (
	writers = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestCompression) // level is valid
		return w
	}}
	readers = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
)

// encodeCompressed frames v as prefix + deflated JSON. Facts are mostly
// repeated words (CPU flags, network names), so deflate usually shrinks
// them by half or more, letting typical records ride UDP gossip.
func encodeCompressed(prefix []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(prefix) + len(data)/2 + 16)
	buf.Write(prefix)
	zw := writers.Get().(*flate.Writer)
	defer writers.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeCompressed reverses encodeCompressed for the payload after the
// prefix.
func decodeCompressed(payload []byte, v any) error {
	zr := readers.Get().(io.ReadCloser)
	defer readers.Put(zr)
	if err := zr.(flate.Resetter).Reset(bytes.NewReader(payload), nil); err != nil {
		return fmt.Errorf("inflate: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
	if err != nil {
		return fmt.Errorf("inflate: %w", err)
	}
	if len(data) > maxDecoded {
		return fmt.Errorf("inflated message exceeds %d bytes", maxDecoded)
	}
	return json.Unmarshal(data, v)
}

// encodeRecord frames a record for gossip or a pull reply: kind, then a
// clear header (version, name, leaving) and the deflated facts. The header
// lets a receiver drop the many copies of a record it already holds (epidemic
// gossip delivers each several times) without inflating them.
func encodeRecord(kind byte, r record) ([]byte, error) {
	h := make([]byte, 1, 16+len(r.Name))
	h[0] = kind
	h = binary.AppendUvarint(h, r.Version)
	h = binary.AppendUvarint(h, uint64(len(r.Name)))
	h = append(h, r.Name...)
	var flags byte
	if r.Leaving {
		flags |= 1
	}
	h = append(h, flags)
	b, err := encodeCompressed(h, r.Facts)
	if err != nil {
		return nil, fmt.Errorf("encode facts of %q v%d: %w", r.Name, r.Version, err)
	}
	return b, nil
}

// recordHeader is a record's clear header and its still deflated facts.
type recordHeader struct {
	Name    string
	Version uint64
	Leaving bool
	body    []byte
}

var errBadHeader = errors.New("decode facts record: bad header")

// peekRecord reads the header of a record message (after the kind byte).
func peekRecord(payload []byte) (recordHeader, error) {
	v, n := binary.Uvarint(payload)
	if n <= 0 {
		return recordHeader{}, errBadHeader
	}
	payload = payload[n:]
	l, n := binary.Uvarint(payload)
	// The name and the flags byte must follow.
	if n <= 0 || l == 0 || len(payload)-n < 1 || l > uint64(len(payload)-n-1) {
		return recordHeader{}, errBadHeader
	}
	payload = payload[n:]
	return recordHeader{Name: string(payload[:l]), Version: v, Leaving: payload[l]&1 != 0, body: payload[l+1:]}, nil
}

// record inflates the facts.
func (h recordHeader) record() (record, error) {
	r := record{Name: h.Name, Version: h.Version, Leaving: h.Leaving}
	if err := decodeCompressed(h.body, &r.Facts); err != nil {
		return record{}, fmt.Errorf("decode facts of %q v%d: %w", h.Name, h.Version, err)
	}
	r.Facts.Name = h.Name
	return r, nil
}

// decodeRecord decodes a whole record message (after the kind byte).
func decodeRecord(payload []byte) (record, error) {
	h, err := peekRecord(payload)
	if err != nil {
		return record{}, err
	}
	return h.record()
}

// decodeState reads a push/pull state message (after the kind byte): at most
// maxStateRecords records, each still to be validated by mergeRecord.
func decodeState(payload []byte) ([]record, error) {
	var recs []json.RawMessage
	if err := decodeCompressed(payload, &recs); err != nil {
		return nil, fmt.Errorf("%w: push/pull state: %v", ErrInvalid, err)
	}
	if len(recs) > maxStateRecords {
		return nil, fmt.Errorf("%w: push/pull state of %d records, over the limit of %d", ErrInvalid, len(recs), maxStateRecords)
	}
	out := make([]record, 0, len(recs))
	for _, raw := range recs {
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%w: push/pull state: %v", ErrInvalid, err)
		}
		out = append(out, r)
	}
	return out, nil
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
//
// Boot rides here rather than in the facts record because explicit bootstrap
// must see it on every member at once, record or not, and it changes only
// when a host enters a mesh.
type meta struct {
	Version uint64
	Big     bool
	Leaving bool
	Boot    Boot
}

const metaFormat = 1

// Meta flag bits (byte 1).
const (
	metaBig     = 1
	metaLeaving = 2
	metaInMesh  = 4
)

// encode writes format, flags, the version and the bootstrap expectation as
// uvarints. Decoders of the first layout (without the expectation) read the
// version and ignore the rest.
func (m meta) encode() []byte {
	b := make([]byte, 2, 2+2*binary.MaxVarintLen64)
	b[0] = metaFormat
	if m.Big {
		b[1] |= metaBig
	}
	if m.Leaving {
		b[1] |= metaLeaving
	}
	if m.Boot.InMesh {
		b[1] |= metaInMesh
	}
	b = binary.AppendUvarint(b, m.Version)
	return binary.AppendUvarint(b, uint64(m.Boot.Expect))
}

// decodeMeta returns ok=false for metadata it does not understand (an empty
// or future format), which callers treat as "no version known".
func decodeMeta(b []byte) (meta, bool) {
	if len(b) < 3 || b[0] != metaFormat {
		return meta{}, false
	}
	v, n := binary.Uvarint(b[2:])
	if n <= 0 || v > MaxVersion {
		return meta{}, false
	}
	m := meta{Version: v, Big: b[1]&metaBig != 0, Leaving: b[1]&metaLeaving != 0}
	m.Boot.InMesh = b[1]&metaInMesh != 0
	if rest := b[2+n:]; len(rest) > 0 {
		e, n := binary.Uvarint(rest)
		if n <= 0 || e > maxExpect {
			return meta{}, false
		}
		m.Boot.Expect = int(e)
	}
	return m, true
}
