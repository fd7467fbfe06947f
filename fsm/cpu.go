package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The cluster CPU baseline, as oVirt's cluster CPU type and VMware's EVC
// mode: one CPU definition every host of a cluster can offer, so that a
// guest given at most that CPU runs on every host and can move between any
// two. Unlike oVirt (which compares a host's flag list with a table of CPU
// types the engine ships) the comparisons are libvirt's own: the leader
// computes the baseline with virConnectBaselineHypervisorCPU over the CPU
// definitions the hosts gossip (HostFacts.CPUXML), and each host compares
// the baseline and its cluster's guest CPUs with its own hypervisor
// (virConnectCompareHypervisorCPU) and gossips the answers
// (HostFacts.CPUVerdicts). The checks read those answers from the state,
// so they stay pure functions of it and every replica decides alike,
// while the answer itself is the destination libvirt's.

// CmdSetCPUBaseline sets or clears a cluster's CPU baseline.
const CmdSetCPUBaseline CommandType = 28

// Size limits of CPU definitions and verdicts. A host-model CPU of a recent
// x86 host is about 3 KiB of XML (some 60 features); 16 KiB leaves room for
// the longest feature lists libvirt's CPU map has, and bounds what one
// gossiped record costs every replica.
const (
	MaxCPUXML = 16 << 10
	// MaxCPUVerdicts bounds the CPU definitions one host answers for: the
	// baseline and the distinct guest CPUs of its cluster. A cluster runs
	// a few CPU types; guests beyond the limit fall back to flag lists.
	MaxCPUVerdicts = 64
)

// Baseline modes of a cluster's CPU baseline (Cluster.CPUBaselineMode).
const (
	// CPUBaselineAuto: the leader computed it from the hosts when the
	// cluster had none.
	CPUBaselineAuto = "auto"
	// CPUBaselineOperator: an operator asked for it to be recomputed
	// (meshctl cluster C --cpu-baseline recompute).
	CPUBaselineOperator = "operator"
)

// CPUVerdict is one host's hypervisor's answer to "can a guest with this
// CPU definition run here?" (libvirt: virConnectCompareHypervisorCPU with
// VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE, whose error names the
// features the host lacks).
type CPUVerdict struct {
	// Digest is CPUDigest of the definition compared.
	Digest string `json:"digest"`
	OK     bool   `json:"ok"`
	// Missing names the features the host lacks (empty when OK, or when
	// the hypervisor refused for another reason, then in Reason).
	Missing []string `json:"missing,omitempty"`
	Reason  string   `json:"reason,omitempty"`
}

// CPUDigest names a CPU definition in verdicts: the first 16 hex digits of
// its SHA-256. The same bytes give the same digest on every host.
func CPUDigest(xml string) string {
	if xml == "" {
		return ""
	}
	s := sha256.Sum256([]byte(xml))
	return hex.EncodeToString(s[:8])
}

// CPUVerdictFor returns the host's verdict on a definition's digest.
func (f *HostFacts) CPUVerdictFor(digest string) (CPUVerdict, bool) {
	if digest == "" {
		return CPUVerdict{}, false
	}
	for _, v := range f.CPUVerdicts {
		if v.Digest == digest {
			return v, true
		}
	}
	return CPUVerdict{}, false
}

// Explain says what a verdict refuses, for messages: the missing features,
// else the hypervisor's reason.
func (v CPUVerdict) Explain() string {
	if len(v.Missing) > 0 {
		return "lacks CPU feature " + strings.Join(v.Missing, ", ")
	}
	if v.Reason != "" {
		return v.Reason
	}
	return "CPU incompatible"
}

// SetCPUBaseline sets a cluster's computed CPU baseline (XML empty clears
// it). Only this command changes the baseline fields: SetCluster keeps
// them, so an operator's change of slots, made from a state read before
// the leader computed a baseline, does not erase it.
type SetCPUBaseline struct {
	Cluster string `json:"cluster"`
	// XML is the baseline CPU definition libvirt computed (with every
	// feature expanded, so Features is the full set).
	XML      string   `json:"xml,omitempty"`
	Model    string   `json:"model,omitempty"`
	Features []string `json:"features,omitempty"`
	// Hosts are the hosts whose CPU definitions it was computed from.
	Hosts []string `json:"hosts,omitempty"`
	Mode  string   `json:"mode,omitempty"`
	// Dropped names the features of the previous baseline this one lacks
	// (for the event: a lowered baseline is said so).
	Dropped []string  `json:"dropped,omitempty"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor,omitempty"`
}

func (x SetCPUBaseline) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("cluster", x.Cluster)
	c.printable("CPU baseline XML", x.XML, MaxCPUXML)
	c.printable("CPU baseline model", x.Model, MaxName)
	c.names("CPU baseline features", x.Features)
	c.names("CPU baseline dropped features", x.Dropped)
	c.listLen("CPU baseline hosts", len(x.Hosts), MaxList)
	for _, h := range x.Hosts {
		c.host("CPU baseline host", h)
	}
	if x.Mode != "" && x.Mode != CPUBaselineAuto && x.Mode != CPUBaselineOperator {
		c.fail("CPU baseline mode %q is neither %q nor %q", x.Mode, CPUBaselineAuto, CPUBaselineOperator)
	}
	if x.XML == "" && (x.Model != "" || len(x.Features) > 0) {
		c.fail("CPU baseline: a model or features without its XML")
	}
	c.time("time", x.At)
	return c.err
}

// EventCPUBaseline is the kind of the event a baseline change writes.
const EventCPUBaseline = "cluster.cpu-baseline"

func applySetCPUBaseline(s *State, data []byte) (any, error) {
	var c SetCPUBaseline
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	cl, ok := s.Clusters[c.Cluster]
	if !ok {
		d := DefaultCluster(c.Cluster)
		cl = &d
		s.Clusters[c.Cluster] = cl
	}
	cl.CPUBaselineXML, cl.CPUBaselineModel = c.XML, c.Model
	cl.CPUBaselineFeatures = slices.Clone(c.Features)
	cl.CPUBaselineHosts = slices.Clone(c.Hosts)
	cl.CPUBaselineMode = c.Mode
	cl.CPUBaselineAt = c.At
	s.tick(c.At)
	msg := fmt.Sprintf("cluster %s: CPU baseline cleared", c.Cluster)
	if c.XML != "" {
		msg = fmt.Sprintf("cluster %s: CPU baseline %s with %d features, from %s (%s)",
			c.Cluster, c.Model, len(c.Features), strings.Join(c.Hosts, ", "), c.Mode)
		if len(c.Dropped) > 0 {
			msg += "; lowered: drops " + strings.Join(c.Dropped, ", ")
		}
	}
	s.emit(Event{Time: c.At, Actor: orActor(c.Actor, s.leaderActor()), Kind: EventCPUBaseline, Message: msg})
	return nil, nil
}

// checkCPUVerdicts validates gossiped verdicts.
func (c *checks) cpuVerdicts(list []CPUVerdict) {
	c.listLen("CPU verdicts", len(list), MaxCPUVerdicts)
	for _, v := range list {
		c.token("CPU verdict digest", v.Digest)
		c.names("CPU verdict missing features", v.Missing)
		c.printable("CPU verdict reason", v.Reason, 1024)
	}
}
