package node

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestPipelineFailedAnswerNeverBlocksTheSender drives a pipeline as
// hashicorp/raft's pipelineReplicate does when a follower's answer fails:
// its decoder (pipelineDecode) reads that answer and stops reading, while
// its sending loop, whose select may pick another send before it sees the
// decoder gone, calls AppendEntries again. Each call must return, and one
// must fail so that the loop ends: before the fix the decoder blocked
// handing the next answer to no one, the next AppendEntries blocked behind
// it, and the leader never replicated to that follower again (the fault
// soak's replica left behind).
func TestPipelineFailedAnswerNeverBlocksTheSender(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	for _, c := range []struct {
		name   string
		answer func(raft.RPC) (any, error)
	}{
		{"refused", func(rpc raft.RPC) (any, error) {
			req := rpc.Command.(*raft.AppendEntriesRequest)
			return &raft.AppendEntriesResponse{Term: req.Term, Success: false, NoRetryBackoff: true}, nil
		}},
		{"answered after the timeout", func(rpc raft.RPC) (any, error) {
			req := rpc.Command.(*raft.AppendEntriesRequest)
			if req.PrevLogEntry == 0 {
				<-release // the follower's slow disk: past the leader's 200 ms
			}
			return &raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: req.Entries[0].Index}, nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			leader := newRaftTransport(listenStream(t), 3, 200*time.Millisecond, nil)
			defer leader.Close()
			follower := newRaftTransport(listenStream(t), 3, time.Second, nil)
			defer follower.Close()
			serve(t, follower, c.answer)

			p, err := leader.AppendEntriesPipeline("f", follower.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			req := func(i int) *raft.AppendEntriesRequest {
				return &raft.AppendEntriesRequest{Term: 2, PrevLogEntry: uint64(i), LeaderCommitIndex: 1,
					Entries: []*raft.Log{{Index: uint64(i + 1), Data: []byte("x")}}}
			}
			if _, err := p.AppendEntries(req(0), &raft.AppendEntriesResponse{}); err != nil {
				t.Fatal(err)
			}
			// Raft's decoder: the failed answer, then it reads no more.
			select {
			case f := <-p.Consumer():
				if f.Error() == nil && f.Response().Success {
					t.Fatalf("the first answer succeeded: %+v", f.Response())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no answer within 10 s")
			}
			// Raft's sender, picking sends until one fails.
			ended := make(chan error, 1)
			go func() {
				for i := 1; i <= 10; i++ {
					if _, err := p.AppendEntries(req(i), &raft.AppendEntriesResponse{}); err != nil {
						ended <- err
						return
					}
				}
				ended <- nil
			}()
			select {
			case err := <-ended:
				if err == nil {
					t.Fatal("10 appends after a failed answer were all taken: the pipeline must end at its first failed answer")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("AppendEntries blocked for 10 s after a failed answer: the leader's replication to this follower hangs")
			}
		})
	}
}
