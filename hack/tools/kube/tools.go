//go:build tools

// Package tools pins the upstream Kubernetes control-plane and node commands that
// hack/kube.sh and hack/node.sh build. Nothing here is Sluice code: the module only exists so
// that `go build` can resolve k8s.io/kubernetes, whose staging modules are
// published at v0.0.0 and need the replace block in go.mod.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
