package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"syscall"
)

// diskDev is the guest's first virtio disk.
const diskDev = "/dev/vda"

// markerSize is one aligned block: O_DIRECT needs aligned offsets, lengths
// and buffers.
const markerSize = 4096

// diskWrite stores "?data=" as a marker in the first block of the disk,
// bypassing the guest's page cache so the bytes reach the virtual disk.
func diskWrite(w http.ResponseWriter, r *http.Request) {
	data := r.URL.Query().Get("data")
	if data == "" || len(data) >= markerSize || bytes.IndexByte([]byte(data), '\n') >= 0 {
		http.Error(w, "want ?data= of 1..4095 bytes without newline", http.StatusBadRequest)
		return
	}
	buf, err := alignedBlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer syscall.Munmap(buf)
	copy(buf, data+"\n")
	f, err := os.OpenFile(diskDev, os.O_WRONLY|syscall.O_DIRECT|os.O_SYNC, 0)
	if err != nil {
		http.Error(w, fmt.Sprintf("open %s: %v", diskDev, err), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if _, err := f.WriteAt(buf, 0); err != nil {
		http.Error(w, fmt.Sprintf("write %s: %v", diskDev, err), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "wrote %d bytes\n", len(data))
}

// diskRead returns the marker last written, read from the disk itself (not
// the guest's page cache, which would migrate along with memory).
func diskRead(w http.ResponseWriter, r *http.Request) {
	buf, err := alignedBlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer syscall.Munmap(buf)
	f, err := os.OpenFile(diskDev, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		http.Error(w, fmt.Sprintf("open %s: %v", diskDev, err), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, 0); err != nil {
		http.Error(w, fmt.Sprintf("read %s: %v", diskDev, err), http.StatusInternalServerError)
		return
	}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		i = 0
	}
	fmt.Fprintf(w, "%s", buf[:i])
}

// alignedBlock returns a page-aligned buffer (mmap'ed memory is).
func alignedBlock() ([]byte, error) {
	return syscall.Mmap(-1, 0, markerSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}
