# Versions of the real servers and tools the test bed builds. One place to bump them.
# Kubernetes must match the k8s-openapi feature in Cargo.toml (v1_37).
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
HELM_VERSION=v4.3.1
# go-containerregistry's crane, which builds the node's sandbox image.
CRANE_VERSION=v0.22.1
# The GitOps helper (tests/gitops/: sigs.k8s.io/cli-utils kstatus, gopher-lua as Argo CD embeds it)
# pins its modules in tests/gitops/go.mod and go.sum.
