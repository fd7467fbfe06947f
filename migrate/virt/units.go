package virt

import (
	"fmt"
	"math/bits"
	"strings"
)

// scaleBytes converts a libvirt XML size (value and unit attribute) to bytes.
// libvirt accepts both SI and binary suffixes; an empty unit means def (KiB
// for domain memory, bytes for storage volumes). A size past 16 EiB is an
// error: it would wrap around to a small figure.
func scaleBytes(value uint64, unit string, def uint64) (uint64, error) {
	mul := def
	switch strings.ToLower(unit) {
	case "":
	case "b", "bytes":
		mul = 1
	case "kb":
		mul = 1000
	case "k", "kib":
		mul = 1 << 10
	case "mb":
		mul = 1000 * 1000
	case "m", "mib":
		mul = 1 << 20
	case "gb":
		mul = 1000 * 1000 * 1000
	case "g", "gib":
		mul = 1 << 30
	case "tb":
		mul = 1000 * 1000 * 1000 * 1000
	case "t", "tib":
		mul = 1 << 40
	default:
		return 0, fmt.Errorf("unknown size unit %q", unit)
	}
	hi, b := bits.Mul64(value, mul)
	if hi != 0 {
		return 0, fmt.Errorf("size %d %s: too large", value, unit)
	}
	return b, nil
}
