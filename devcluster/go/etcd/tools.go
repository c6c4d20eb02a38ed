//go:build tools

// Package tools pins the etcd server command into this module's graph.
package tools

import _ "go.etcd.io/etcd/server/v3"
