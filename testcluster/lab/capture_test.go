package lab

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCaptureFindsMarker: a capture on a host's management interface sees a
// datagram sent to it from the root namespace, and the host's ICMP answer
// (which quotes the datagram) as an outgoing frame; a marker never sent is
// never found.
func TestCaptureFindsMarker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startLab(t, ctx, 1)
	h := l.Hosts[0]
	sent := []byte("hostmesh-capture-test-0123456789")
	never := []byte("hostmesh-never-sent-abcdefghijkl")
	c, err := h.Capture(MgmtIface, sent, never)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", h.MgmtIP+":9")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := bytes.Repeat(sent, 4)
	err = poll(ctx, 50*time.Millisecond, "the capture to see the datagram and the answer", func() (bool, error) {
		if _, err := conn.Write(payload); err != nil && !strings.Contains(err.Error(), "refused") {
			return false, err
		}
		s := c.Stats()
		return s.Hits[0] >= 2 && s.OutFrames > 0, nil
	})
	st, serr := c.Stop()
	if err != nil || serr != nil {
		t.Fatalf("capture on %s of %s: %v, %v (saw %+v)", MgmtIface, h.Name, err, serr, st)
	}
	if st.Hits[1] != 0 {
		t.Errorf("capture found a marker nobody sent in %d frames", st.Hits[1])
	}
	if st.Bytes < uint64(len(payload)) || st.OutBytes == 0 || st.OutBytes > st.Bytes {
		t.Errorf("capture stats %+v: want the datagram's bytes and an outgoing answer", st)
	}
	t.Logf("capture: %+v", st)
}
