package virt

import (
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

// statsOf converts libvirt's job stats (virDomainGetJobStats) to the mesh's
// shape. Fields libvirt did not report stay zero.
func statsOf(j *libvirt.DomainJobInfo) migrate.JobStats {
	s := migrate.JobStats{
		Elapsed:       time.Duration(j.TimeElapsed) * time.Millisecond,
		DataTotal:     j.DataTotal,
		DataProcessed: j.DataProcessed,
		DataRemaining: j.DataRemaining,
		MemTotal:      j.MemTotal,
		MemProcessed:  j.MemProcessed,
		MemRemaining:  j.MemRemaining,
		MemBps:        j.MemBps,
		MemIteration:  int(j.MemIteration),
		DiskTotal:     j.DiskTotal,
		DiskProcessed: j.DiskProcessed,
		DiskRemaining: j.DiskRemaining,
		Downtime:      time.Duration(j.Downtime) * time.Millisecond,
	}
	// memory_dirty_rate is in pages per second; the mesh wants bytes.
	if j.MemDirtyRateSet {
		page := j.MemPageSize
		if page == 0 {
			page = 4096
		}
		s.MemDirtyRate = j.MemDirtyRate * page
	}
	if j.AutoConvergeThrottleSet {
		s.AutoConvergeThrottle = j.AutoConvergeThrottle
	}
	if j.MemPostcopyReqsSet && j.MemPostcopyReqs > 0 {
		s.PostCopy = true
	}
	return s
}
