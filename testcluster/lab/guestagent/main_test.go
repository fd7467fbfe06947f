package main

import "testing"

func TestParseCmdline(t *testing.T) {
	c := parseCmdline("console=ttyS0 quiet hm.name=g1 hm.fill=160 hm.dirty=64 hm.ip=10.79.0.50/24 hm.dirty2=x\n")
	if c.fillMiB != 160 || c.dirtyMiBps != 64 {
		t.Fatalf("parsed %+v, want fill 160, dirty 64", c)
	}
	if c := parseCmdline("hm.fill=abc"); c.fillMiB != 0 {
		t.Fatalf("bad number parsed as %d", c.fillMiB)
	}
}
