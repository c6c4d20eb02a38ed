//go:build tools

// Package tools pins KServe's agent (the sidecar that holds the payload logger) into this
// module's graph so that `go build github.com/kserve/kserve/cmd/agent` resolves here.
package tools

import _ "github.com/kserve/kserve/cmd/agent"
