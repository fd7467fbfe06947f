package fsm

import (
	"strings"
	"testing"
	"time"
)

// TestCPUBaselineSetKeptAndCleared: SetCPUBaseline sets the baseline
// fields, a later SetCluster keeps them, and an empty XML clears them.
func TestCPUBaselineSetKeptAndCleared(t *testing.T) {
	f := New()
	at := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	xml := "<cpu mode='custom' match='exact'><model>Westmere</model><feature policy='require' name='aes'/></cpu>"
	set := SetCPUBaseline{Cluster: "c1", XML: xml, Model: "Westmere", Features: []string{"aes", "sse4.2"},
		Hosts: []string{"h1", "h2"}, Mode: CPUBaselineAuto, At: at}
	if err := Validate(mustEncode(t, CmdSetCPUBaseline, set)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	must(t, f, CmdSetCPUBaseline, set)
	cl := DefaultCluster("c1")
	cl.MaxConcurrent = 3
	must(t, f, CmdSetCluster, SetCluster{Cluster: cl, At: at.Add(time.Second)})
	f.Read(func(s *State) {
		got := s.Clusters["c1"]
		if got.MaxConcurrent != 3 || got.CPUBaselineXML != xml || got.CPUBaselineModel != "Westmere" ||
			strings.Join(got.CPUBaselineFeatures, ",") != "aes,sse4.2" || got.CPUBaselineMode != CPUBaselineAuto {
			t.Fatalf("after SetCluster: %+v", got)
		}
		c := s.Clone()
		c.Clusters["c1"].CPUBaselineFeatures[0] = "x"
		if got.CPUBaselineFeatures[0] != "aes" {
			t.Fatal("Clone shares the baseline's features")
		}
	})
	must(t, f, CmdSetCPUBaseline, SetCPUBaseline{Cluster: "c1", At: at.Add(2 * time.Second)})
	f.Read(func(s *State) {
		if got := s.Clusters["c1"]; got.CPUBaselineXML != "" || got.CPUBaselineFeatures != nil {
			t.Fatalf("not cleared: %+v", got)
		}
	})
}

// TestCPUDefinitionLimits: an oversized CPU XML or too many verdicts in a
// host's facts are refused before the log.
func TestCPUDefinitionLimits(t *testing.T) {
	f := HostFacts{Name: "h1", Cluster: "c1", CPUXML: strings.Repeat("x", MaxCPUXML+1)}
	if err := Validate(mustEncode(t, CmdUpsertHost, UpsertHost{Facts: f, At: time.Now()})); err == nil {
		t.Fatal("a CPU XML over the limit passed")
	}
	f.CPUXML = ""
	for i := 0; i <= MaxCPUVerdicts; i++ {
		f.CPUVerdicts = append(f.CPUVerdicts, CPUVerdict{Digest: CPUDigest(string(rune('a' + i%26)))})
	}
	if err := Validate(mustEncode(t, CmdUpsertHost, UpsertHost{Facts: f, At: time.Now()})); err == nil {
		t.Fatal("too many CPU verdicts passed")
	}
	if err := Validate(mustEncode(t, CmdSetCPUBaseline, SetCPUBaseline{Cluster: "c1", Model: "x", At: time.Now()})); err == nil {
		t.Fatal("a baseline model without XML passed")
	}
}
