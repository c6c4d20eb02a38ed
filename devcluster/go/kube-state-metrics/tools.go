//go:build tools

// Package tools pins kube-state-metrics into this module's graph so that
// `go build k8s.io/kube-state-metrics/v2` resolves here.
package tools

import _ "k8s.io/kube-state-metrics/v2"
