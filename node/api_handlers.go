package node

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// hostView is what GET /v1/hosts writes: api.HostView's JSON, built from
// the replicated host.
type hostView struct {
	fsm.Host
	RaftRole string `json:"raft_role"`
	VMs      int    `json:"vms"`
}

func (n *Node) status() api.Status {
	_, leader := n.raft.LeaderWithID()
	st := api.Status{Self: n.cfg.Name, RaftState: n.raft.State().String(), Leader: string(leader),
		LastIndex: n.raft.LastIndex(), AppliedIndex: n.raft.AppliedIndex(), Term: n.raft.CurrentTerm()}
	if cfg, err := n.raftConfig(); err == nil {
		for _, s := range cfg {
			if s.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, string(s.ID))
			} else {
				st.Nonvoters = append(st.Nonvoters, string(s.ID))
			}
		}
	}
	st.GossipMembers = n.aliveGossipPeers() + 1
	st.JoinError = n.JoinError()
	sort.Strings(st.Voters)
	sort.Strings(st.Nonvoters)
	n.fsm.Read(func(s *fsm.State) {
		st.Hosts, st.VMs = len(s.Hosts), len(s.VMs)
		st.Queued, st.Running = len(s.Queued()), len(s.Running())
	})
	return st
}

// The listings answer blocking reads too (?index=&wait=), so the web
// dashboard and scripts learn of any change at once without polling.

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	if err := n.blockingRead(w, r); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n.status())
}

func (n *Node) handleHosts(w http.ResponseWriter, r *http.Request) {
	if err := n.blockingRead(w, r); err != nil {
		writeErr(w, err)
		return
	}
	st := n.status()
	role := map[string]string{}
	for _, v := range st.Voters {
		role[v] = "voter"
	}
	for _, v := range st.Nonvoters {
		role[v] = "nonvoter"
	}
	if st.Leader != "" {
		role[st.Leader] = "leader"
	}
	var out []hostView
	n.fsm.Read(func(s *fsm.State) {
		for _, name := range s.HostNames() {
			r := role[name]
			if r == "" {
				r = "none"
			}
			out = append(out, hostView{Host: *s.Hosts[name], RaftRole: r, VMs: len(s.VMsOn(name))})
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// vmView is what GET /v1/vms writes for each VM: api.VM's JSON, a VM
// with the alarm that stands for it, if any.
type vmView struct {
	fsm.VM
	Alarm         *fsm.Alarm      `json:"alarm,omitempty"`
	Settings      *fsm.VMSettings `json:"settings,omitempty"`
	NotMigratable string          `json:"not_migratable,omitempty"`
}

func (n *Node) handleVMs(w http.ResponseWriter, r *http.Request) {
	if err := n.blockingRead(w, r); err != nil {
		writeErr(w, err)
		return
	}
	var out []vmView
	n.fsm.Read(func(s *fsm.State) {
		for _, k := range s.VMKeys() {
			v := vmView{VM: *s.VMs[k]}
			a := s.SplitBrain(k)
			if a == nil {
				a = s.Alarms[fsm.AlarmKey(fsm.AlarmMigrationUnsettled, k)]
			}
			if a != nil {
				c := *a
				v.Alarm = &c
			}
			if vs := s.VMSettings[k]; vs != nil {
				c := *vs
				v.Settings = &c
			}
			v.NotMigratable = s.NotMigratable(k)
			out = append(out, v)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// migrationOrder sorts IDs m1, m2, ... numerically.
func migrationOrder(ids []string) {
	sort.Slice(ids, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.TrimPrefix(ids[i], "m"))
		b, _ := strconv.Atoi(strings.TrimPrefix(ids[j], "m"))
		return a < b
	})
}

// handleMigrations lists migrations oldest first. ?state=Queued,Running
// keeps those states; ?limit=N keeps the N newest of what is left: the
// dashboard refreshes the live ones and the latest results several times a
// second, and a mesh's history can hold thousands.
func (n *Node) handleMigrations(w http.ResponseWriter, r *http.Request) {
	q, err := readQuery(r.URL.RawQuery, "index", "wait", "state", "limit")
	if err != nil {
		writeErr(w, err)
		return
	}
	states, limit, err := parseMigrationsQuery(q)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := n.blockingReadQuery(w, r, q); err != nil {
		writeErr(w, err)
		return
	}
	out := []fsm.Migration{}
	n.fsm.Read(func(s *fsm.State) {
		ids := make([]string, 0, len(s.Migrations))
		for id, m := range s.Migrations {
			if len(states) == 0 || states[m.State] {
				ids = append(ids, id)
			}
		}
		migrationOrder(ids)
		if limit > 0 && len(ids) > limit {
			ids = ids[len(ids)-limit:]
		}
		for _, id := range ids {
			out = append(out, *s.Migrations[id])
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// handleDrains lists every host's last drain, by host name.
func (n *Node) handleDrains(w http.ResponseWriter, r *http.Request) {
	if err := n.blockingRead(w, r); err != nil {
		writeErr(w, err)
		return
	}
	out := []fsm.Drain{}
	n.fsm.Read(func(s *fsm.State) {
		for _, name := range slices.Sorted(maps.Keys(s.Drains)) {
			out = append(out, *s.Drains[name])
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleMigration(w http.ResponseWriter, r *http.Request) {
	id, err := migrationParam(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := n.blockingRead(w, r); err != nil {
		writeErr(w, err)
		return
	}
	var m *fsm.Migration
	n.fsm.Read(func(s *fsm.State) {
		if v := s.Migrations[id]; v != nil {
			c := *v
			m = &c
		}
	})
	if m == nil {
		writeErr(w, notFound("migration %q: no such migration", id))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// migrateResponse is api.MigrateResponse's JSON with the candidates as
// package migrate computes them.
type migrateResponse struct {
	ID         string            `json:"id,omitempty"`
	Placement  string            `json:"placement,omitempty"`
	Candidates []dryRunCandidate `json:"candidates,omitempty"`
}

// handleMigrate checks a request against this replica's state and refuses at
// once, naming the failed check, before anything is queued. The scheduler
// checks again when it grants, against the state of that moment.
func (n *Node) handleMigrate(w http.ResponseWriter, r *http.Request) {
	req, err := decodeMigrate(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	st := n.fsm.State()
	key, vm, err := st.ResolveVM(req.VM)
	switch {
	case errors.Is(err, fsm.ErrAmbiguousVM):
		writeErr(w, badRequest("migrate: %v", err))
		return
	case err != nil:
		writeErr(w, notFound("migrate: %v", err))
		return
	}
	if req.To != "" && st.Hosts[req.To] == nil {
		writeErr(w, notFound("migrate vm %q: no such host %q", req.VM, req.To))
		return
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, migrateResponse{Candidates: n.dryRun(r.Context(), st, key, req)})
		return
	}
	resp := migrateResponse{}
	if req.To != "" {
		if err := migrate.Refusal(vm.Name, req.To, migrate.CheckMigration(st, key, req.To)); err != nil {
			n.metrics.countRefusal(err)
			writeErr(w, err)
			return
		}
	} else {
		p, err := migrate.Place(st, key, nil)
		if err != nil {
			n.metrics.countRefusal(err)
			writeErr(w, err)
			return
		}
		resp.Placement = p.Reason
	}
	v, err := n.propose(r.Context(), fsm.CmdEnqueue, fsm.Enqueue{VM: key, Dest: req.To, Policy: req.Policy, Actor: actorOf(r),
		BandwidthMiB: req.BandwidthMiB, Parallel: req.Parallel, At: time.Now().UTC()})
	if err != nil {
		n.metrics.countRefusal(err)
		writeErr(w, err)
		return
	}
	_ = json.Unmarshal(v, &resp.ID)
	writeJSON(w, http.StatusAccepted, resp)
}

func (n *Node) handleCancel(w http.ResponseWriter, r *http.Request) {
	id, err := migrationParam(r)
	if err == nil {
		err = decodeNoBody(r, "cancel "+id)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	at := time.Now().UTC()
	if _, err := n.propose(r.Context(), fsm.CmdCancel, fsm.Cancel{ID: id, At: at, Actor: actorOf(r)}); err != nil {
		writeErr(w, n.unknownMigration(err, id))
		return
	}
	// A queued migration ends here; a running one is counted by its source.
	n.countCancelledAt(at, func(m *fsm.Migration) bool { return m.ID == id }, reasonOperator)
	writeJSON(w, http.StatusAccepted, api.CancelResponse{ID: id})
}

func (n *Node) handleDrain(w http.ResponseWriter, r *http.Request) {
	host, err := hostParam(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	req, err := decodeDrain(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	ids, err := n.drain(r.Context(), host, req.Reason, req.Policy, actorOf(r))
	if err != nil {
		writeErr(w, n.unknownHost(err, host))
		return
	}
	writeJSON(w, http.StatusAccepted, api.HostMigrations{Host: host, Migrations: ids})
}

// drainPlanBudget bounds the plan a drain's start makes for its
// prediction (a host of 50 VMs in a cluster of 100 hosts and 2,000 VMs
// takes seconds; a few hosts of a few dozen VMs, milliseconds).
const drainPlanBudget = 300 * time.Millisecond

func (n *Node) drain(ctx context.Context, host, reason, policy, actor string) ([]string, error) {
	if reason == "" {
		reason = "operator"
	}
	now := time.Now().UTC()
	// The plan's prediction goes with the drain, so its error is
	// recorded when it ends. A plan that fails predicts nothing (the
	// drain's own start then says why), nor one that takes longer than
	// drainPlanBudget: a drain (a leave, a SIGTERM) never waits on it.
	var predicted float64
	pctx, cancel := context.WithTimeout(ctx, drainPlanBudget)
	p, err := planDrain(pctx, n.fsm.State(), host, now)
	cancel()
	if err == nil {
		predicted = math.Round(p.TotalSeconds*1000) / 1000
	} else if errors.Is(err, context.DeadlineExceeded) {
		n.log.Info("drain starts without a predicted time: its plan takes too long", "host", host, "budget", drainPlanBudget)
	}
	v, err := n.propose(ctx, fsm.CmdStartDrain, fsm.StartDrain{Host: host, Reason: reason, Policy: policy, At: now, Actor: actor,
		PredictedSeconds: predicted})
	if err != nil {
		return nil, err
	}
	var ids []string
	_ = json.Unmarshal(v, &ids)
	return ids, nil
}

func (n *Node) handleDrainStatus(w http.ResponseWriter, r *http.Request) {
	if _, err := hostParam(r); err != nil {
		writeErr(w, err)
		return
	}
	if err := n.blockingRead(w, r); err != nil {
		writeErr(w, err)
		return
	}
	var d *fsm.Drain
	n.fsm.Read(func(s *fsm.State) {
		if v := s.Drains[r.PathValue("name")]; v != nil {
			c := *v
			d = &c
		}
	})
	if d == nil {
		writeErr(w, notFound("host %q has never been drained", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (n *Node) handleDrainCancel(w http.ResponseWriter, r *http.Request) {
	host, err := hostParam(r)
	if err == nil {
		err = decodeNoBody(r, "cancel the drain of "+host)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	at := time.Now().UTC()
	if _, err := n.propose(r.Context(), fsm.CmdEndDrain, fsm.EndDrain{Host: host, State: fsm.DrainCancelled, At: at, Actor: actorOf(r)}); err != nil {
		writeErr(w, n.unknownHost(err, host))
		return
	}
	n.countCancelledAt(at, func(m *fsm.Migration) bool { return m.Drain == host }, reasonDrainCancelled)
	writeJSON(w, http.StatusAccepted, api.HostResponse{Host: host})
}

func (n *Node) handleActivate(w http.ResponseWriter, r *http.Request) {
	host, err := hostParam(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	req, err := decodeActivate(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	var drainStart time.Time // an active drain's queue is cancelled at its start time
	n.fsm.Read(func(s *fsm.State) {
		if d := s.Drains[host]; d != nil && d.State == fsm.DrainActive {
			drainStart = d.CreatedAt
		}
	})
	v, err := n.propose(r.Context(), fsm.CmdActivate, fsm.Activate{Host: host, Actor: actorOf(r), At: time.Now().UTC()})
	if err != nil {
		writeErr(w, n.unknownHost(err, host))
		return
	}
	if !drainStart.IsZero() {
		n.countCancelledAt(drainStart, func(m *fsm.Migration) bool { return m.Drain == host }, reasonDrainCancelled)
	}
	var moved map[string]string
	_ = json.Unmarshal(v, &moved)
	var ids []string
	if req.Return {
		names := make([]string, 0, len(moved))
		for vm := range moved {
			names = append(names, vm)
		}
		sort.Strings(names)
		for _, vm := range names {
			out, err := n.propose(r.Context(), fsm.CmdEnqueue, fsm.Enqueue{VM: vm, Dest: host, At: time.Now().UTC(), Actor: actorOf(r)})
			if err != nil {
				continue // moved elsewhere or gone since: nothing to bring back
			}
			var id string
			_ = json.Unmarshal(out, &id)
			ids = append(ids, id)
		}
	}
	writeJSON(w, http.StatusAccepted, api.HostMigrations{Host: host, Migrations: ids})
}

func (n *Node) handleGetCluster(w http.ResponseWriter, r *http.Request) {
	name, err := clusterParam(r)
	if err == nil {
		_, err = readQuery(r.URL.RawQuery)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	var c fsm.Cluster
	n.fsm.Read(func(s *fsm.State) {
		if c = s.Cluster(name); !clusterKnown(s, name) {
			err = unknownCluster(s, name)
		}
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// handlePutCluster changes the settings a PUT names and keeps the others
// (meshctl cluster sends the whole object it read and changed). The
// current settings are this replica's: a PUT racing another may undo it,
// as two meshctl runs would.
func (n *Node) handlePutCluster(w http.ResponseWriter, r *http.Request) {
	name, err := clusterParam(r)
	var q url.Values
	if err == nil {
		q, err = readQuery(r.URL.RawQuery, "create")
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	create := q.Get("create") == "true"
	var cur fsm.Cluster
	n.fsm.Read(func(s *fsm.State) {
		if cur = s.Cluster(name); !create && !clusterKnown(s, name) {
			err = unknownCluster(s, name)
		}
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	c, err := decodeCluster(r.Header.Get("Content-Type"), r.Body, cur)
	if err != nil {
		writeErr(w, err)
		return
	}
	if cur.BandwidthMode != fsm.BandwidthAuto && c.BandwidthMode == fsm.BandwidthAuto && c.OverlapMs == cur.OverlapMs && c.OverlapMs == 0 {
		// Auto bandwidth knows the network, so setups can overlap the
		// end of transfers (fsm/overlap.go): on unless the operator said.
		// Written into the entry, not assumed by the FSM, so that every
		// replica applies the same rule whatever version it runs.
		c.OverlapMs = fsm.DefaultOverlapMs
	}
	if _, err := n.propose(r.Context(), fsm.CmdSetCluster, fsm.SetCluster{Cluster: c, Actor: actorOf(r), At: time.Now().UTC()}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (n *Node) handleLeave(w http.ResponseWriter, r *http.Request) {
	req, err := decodeLeave(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	timeout := time.Duration(req.TimeoutSeconds) * time.Second
	// The answer comes when the drain ends: past the server's WriteTimeout.
	wait := timeout
	if wait <= 0 {
		wait = n.cfg.DrainTimeout
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + time.Minute))
	rep, err := n.LeaveAs(r.Context(), timeout, actorOf(r))
	if err != nil && rep == nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
	if err == nil {
		n.leftOnce.Do(func() { close(n.left) })
	}
}
