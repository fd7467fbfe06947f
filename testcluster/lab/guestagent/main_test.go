package main

import (
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	c := parseCmdline("console=ttyS0 quiet hm.name=g1 hm.fill=160 hm.dirty=64 hm.ip=10.79.0.50/24 hm.dirty2=x\n")
	if c.fillMiB != 160 || c.dirtyMiBps != 64 {
		t.Fatalf("parsed %+v, want fill 160, dirty 64", c)
	}
	if c := parseCmdline("hm.fill=8 hm.marker=hostmesh-marker-0123456789abcdef"); c.marker != "hostmesh-marker-0123456789abcdef" {
		t.Fatalf("marker parsed as %q", c.marker)
	}
	if c := parseCmdline("hm.fill=abc"); c.fillMiB != 0 {
		t.Fatalf("bad number parsed as %d", c.fillMiB)
	}
}

// TestFillWithMarker: every page of a marker fill holds the marker whole,
// so a capture of a cleartext stream finds it in any page it sees.
func TestFillWithMarker(t *testing.T) {
	const marker = "hostmesh-marker-0123456789abcdef"
	mem := fill(8, marker)
	for p := 0; p+pageSize <= len(mem); p += pageSize {
		if !strings.Contains(string(mem[p:p+pageSize]), marker) {
			t.Fatalf("page %d lacks the marker", p/pageSize)
		}
	}
	if plain := fill(8, ""); strings.Contains(string(plain), marker) {
		t.Fatal("a fill without marker contains it")
	}
}
