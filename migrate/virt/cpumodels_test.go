package virt

import (
	"reflect"
	"testing"
)

func TestParseUsableModels(t *testing.T) {
	doc := `<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><domain>qemu</domain><arch>x86_64</arch>
<cpu><mode name='host-passthrough' supported='no'/>
<mode name='custom' supported='yes'>
  <model usable='yes' vendor='unknown'>qemu64</model>
  <model usable='no' vendor='Intel'>Skylake-Server</model>
  <model usable='yes' vendor='AMD'>Opteron_G1</model>
</mode></cpu></domainCapabilities>`
	got, err := parseUsableModels(doc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"qemu64", "Opteron_G1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("usable models %v, want %v", got, want)
	}
	if _, err := parseUsableModels("<nope"); err == nil {
		t.Fatal("garbage must not parse")
	}
}
