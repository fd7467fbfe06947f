package daemon

import (
	"strings"
	"testing"
)

func TestMeshdGCPercentOutOfRange(t *testing.T) {
	for _, p := range []string{"5", "1001"} {
		code, msg := runMeshdArgs(t, "--dev", "--bootstrap", "--check-config", "--gc-percent", p)
		if code != exitUsage || !strings.Contains(msg, "--gc-percent "+p) {
			t.Errorf("--gc-percent %s: exit %d %q, want 2 naming --gc-percent", p, code, msg)
		}
	}
}
