package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestPermuteMovesFlagsBeforeArguments(t *testing.T) {
	app := App(&bytes.Buffer{}, &bytes.Buffer{})
	cases := [][2][]string{
		{{"meshctl", "migrate", "vm7", "--wait"}, {"meshctl", "migrate", "--wait", "vm7"}},
		{{"meshctl", "--addr", "h1:7400", "migrate", "vm7", "--to", "h3", "--dry-run"},
			{"meshctl", "--addr", "h1:7400", "migrate", "--to", "h3", "--dry-run", "vm7"}},
		{{"meshctl", "drain", "h2", "--cancel"}, {"meshctl", "drain", "--cancel", "h2"}},
		{{"meshctl", "hosts"}, {"meshctl", "hosts"}},
		{{"meshctl", "tls", "cert", "create", "--host", "h1", "--ip", "10.0.0.1"},
			{"meshctl", "tls", "cert", "create", "--host", "h1", "--ip", "10.0.0.1"}},
	}
	for _, c := range cases {
		if got := permute(app, c[0]); !reflect.DeepEqual(got, c[1]) {
			t.Errorf("permute(%v) = %v, want %v", c[0], got, c[1])
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run([]string{"meshctl", "migrate"}, &out, &errOut); code != exitUsage {
		t.Fatalf("migrate without a VM: exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut.String(), "exactly one VM name") {
		t.Fatalf("error output %q does not say what is missing", errOut.String())
	}
	errOut.Reset()
	if code := Run([]string{"meshctl", "--addr", "127.0.0.1:1", "hosts"}, &out, &errOut); code != exitUnreachable {
		t.Fatalf("unreachable meshd: exit %d, want %d (%s)", code, exitUnreachable, errOut.String())
	}
}
