//go:build tools

// Package tools pins the control-plane commands (and the kubelet of the real node,
// devcluster/node.py) into this module's graph so that
// `go build k8s.io/kubernetes/cmd/...` resolves without a main package of our own.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
