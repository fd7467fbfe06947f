//go:build tools

// Package tools pins the project's dependencies in go.mod before the code that
// uses them lands, so parallel work never races on go.mod.
package tools

import (
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/go-metrics/compat"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/urfave/cli/v2"
	_ "libvirt.org/go/libvirt"
	_ "libvirt.org/go/libvirtxml"
)
