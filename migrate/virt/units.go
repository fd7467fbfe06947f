package virt

import (
	"fmt"
	"strings"
)

// scaleBytes converts a libvirt XML size (value and unit attribute) to bytes.
// libvirt accepts both SI and binary suffixes; an empty unit means def (KiB
// for domain memory, bytes for storage volumes).
func scaleBytes(value uint64, unit string, def uint64) (uint64, error) {
	if unit == "" {
		return value * def, nil
	}
	var mul uint64
	switch strings.ToLower(unit) {
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
	return value * mul, nil
}
