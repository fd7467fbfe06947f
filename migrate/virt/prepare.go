package virt

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/fsm"
)

// ErrDiskMismatch is returned by PrepareDestDisks when an image already exists
// at the destination path with another virtual size or format: copying onto it
// would fail half-way or overwrite a stranger's data.
var ErrDiskMismatch = errors.New("destination image differs")

// PrepareDestDisks creates, on the destination hypervisor, an empty image for
// each local disk to be copied live (Params.CopyStorage), at the same path with
// the same virtual size and format: QEMU's NBD copy writes into an existing
// image and refuses a missing or smaller one. It goes through libvirt's storage
// API (an active pool holding the directory, else a transient dir pool made for
// the call), so it needs no shell on the destination. An image already there
// with the same size and format is kept, so a retried migration may call this
// again. Disks need Source (an absolute path) and SizeBytes, as Domains reports.
func PrepareDestDisks(ctx context.Context, destURI string, disks []fsm.Disk) error {
	if len(disks) == 0 {
		return nil
	}
	conn, err := libvirt.NewConnect(destURI)
	if err != nil {
		return wrap(err, "prepare disks: connect to %s", destURI)
	}
	defer conn.Close()
	for _, d := range disks {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("prepare disk %s on %s: %w", d.Source, destURI, err)
		}
		if err := prepareDisk(conn, d); err != nil {
			return fmt.Errorf("prepare disk %s (%s) on %s: %w", d.Target, d.Source, destURI, err)
		}
	}
	return nil
}

// prepareDisk makes sure one image exists on conn's host.
func prepareDisk(conn *libvirt.Connect, d fsm.Disk) error {
	if !filepath.IsAbs(d.Source) {
		return fmt.Errorf("source is not a file path")
	}
	if d.SizeBytes == 0 {
		return fmt.Errorf("virtual size unknown")
	}
	format := d.Format
	if format == "" {
		format = "raw"
	}
	dir, base := filepath.Dir(d.Source), filepath.Base(d.Source)

	pool, transient, err := poolFor(conn, dir)
	if err != nil {
		return err
	}
	defer func() {
		if transient {
			pool.Destroy() // a transient dir pool leaves its files behind
		}
		pool.Free()
	}()
	if err := pool.Refresh(0); err != nil {
		return wrap(err, "refresh pool for %s", dir)
	}
	if vol, err := pool.LookupStorageVolByName(base); err == nil {
		defer vol.Free()
		return checkVolume(vol, d.SizeBytes, format)
	}
	volXML, err := (&libvirtxml.StorageVolume{
		Name:       base,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: d.SizeBytes},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
	}).Marshal()
	if err != nil {
		return fmt.Errorf("volume XML: %w", err)
	}
	vol, err := pool.StorageVolCreateXML(volXML, 0)
	if err != nil {
		return wrap(err, "create %s image of %d bytes", format, d.SizeBytes)
	}
	vol.Free()
	return nil
}

// checkVolume accepts an existing image only if it matches.
func checkVolume(vol *libvirt.StorageVol, size uint64, format string) error {
	volXML, err := vol.GetXMLDesc(0)
	if err != nil {
		return wrap(err, "existing image")
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(volXML); err != nil {
		return fmt.Errorf("parse existing image XML: %w", err)
	}
	var got uint64
	if v.Capacity != nil {
		if got, err = scaleBytes(v.Capacity.Value, v.Capacity.Unit, 1); err != nil {
			return fmt.Errorf("existing image capacity: %w", err)
		}
	}
	gotFmt := ""
	if v.Target != nil && v.Target.Format != nil {
		gotFmt = v.Target.Format.Type
	}
	if got != size || gotFmt != format {
		return fmt.Errorf("%w: exists as %s of %d bytes, need %s of %d", ErrDiskMismatch, gotFmt, got, format, size)
	}
	return nil
}

// poolFor returns an active pool whose target is dir, or creates a transient
// dir pool for it (building the directory). transient tells the caller to
// destroy it when done.
func poolFor(conn *libvirt.Connect, dir string) (pool *libvirt.StoragePool, transient bool, err error) {
	if p, err := activePoolAt(conn, dir); err != nil || p != nil {
		return p, false, err
	}
	h := fnv.New32a()
	h.Write([]byte(dir))
	poolXML, err := (&libvirtxml.StoragePool{
		Type:   "dir",
		Name:   fmt.Sprintf("hostmesh-prep-%08x", h.Sum32()),
		Target: &libvirtxml.StoragePoolTarget{Path: dir},
	}).Marshal()
	if err != nil {
		return nil, false, fmt.Errorf("pool XML: %w", err)
	}
	p, createErr := conn.StoragePoolCreateXML(poolXML, libvirt.STORAGE_POOL_CREATE_WITH_BUILD)
	if createErr == nil {
		return p, true, nil
	}
	// Drivers without pool building (libvirt's test driver) refuse the flag;
	// the directory must then exist already.
	if errors.Is(createErr, libvirt.ERR_INVALID_ARG) || errors.Is(createErr, libvirt.ERR_NO_SUPPORT) {
		if p, err := conn.StoragePoolCreateXML(poolXML, 0); err == nil {
			return p, true, nil
		}
	}
	// A concurrent caller may have made one for the same directory.
	if p, err := activePoolAt(conn, dir); err == nil && p != nil {
		return p, false, nil
	}
	return nil, false, wrap(createErr, "create transient pool at %s", dir)
}

// activePoolAt finds an active pool whose target path is dir, or nil.
func activePoolAt(conn *libvirt.Connect, dir string) (*libvirt.StoragePool, error) {
	pools, err := conn.ListAllStoragePools(libvirt.CONNECT_LIST_STORAGE_POOLS_ACTIVE)
	if err != nil {
		return nil, wrap(err, "list storage pools")
	}
	var found *libvirt.StoragePool
	for i := range pools {
		if found == nil {
			if x, err := pools[i].GetXMLDesc(0); err == nil {
				var sp libvirtxml.StoragePool
				if sp.Unmarshal(x) == nil && sp.Target != nil && filepath.Clean(sp.Target.Path) == dir {
					found = &pools[i]
					continue
				}
			}
		}
		pools[i].Free()
	}
	return found, nil
}
