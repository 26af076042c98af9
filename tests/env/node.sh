#!/usr/bin/env bash
# node.sh net|start|import|stop DIR ...: a Kubernetes cluster with one real node, for the tests that
# run the operator's image in pods.
#
# net:    the node's network: the network namespace $NODE_NETNS, joined to this host by a veth pair
#         ($NODE_HOST_ADDRESS here, $NODE_ADDRESS there). The directories start after it, so that
#         they listen on the host end as well, where pods reach them.
# start:  a control plane for the node (kube.sh with KUBE_FOR_NODE=1, state in DIR/kube) and, inside
#         the namespace, containerd (Debian's, with runc) with a CNI bridge for pods, the kubelet and
#         kube-proxy (iptables), so pods reach the apiserver through the `kubernetes` Service. The
#         sandbox (pause) image is built here with crane and imported; no registry is involved.
#         Returns once the node is Ready. Writes DIR/env.
# import DIR ARCHIVE NAME: loads an OCI archive (one platform or an index) into the node as NAME.
# stop:   stops all of it, the pods' processes, mounts and cgroups too, and removes the namespace.
. "$(dirname "$0")/lib.sh"

usage="usage: node.sh net|start|stop DIR | node.sh import DIR ARCHIVE NAME"
cmd=${1:?$usage}
dir=${2:?$usage}
K8S_BIN=$CACHE_DIR/bin/kubernetes-$KUBERNETES_VERSION
CRANE=$CACHE_DIR/bin/crane-$CRANE_VERSION/crane
CNI_BIN=/usr/lib/cni
NODE_NAME=usersync-node
POD_RANGE=10.244.0.0/24
CGROUP_ROOT=/usersync-node
SANDBOX_IMAGE=registry.k8s.io/pause:3.10
SOCKET=$dir/containerd.sock

in_node() { nsenter --net="/run/netns/$NODE_NETNS" -- "$@"; }
ctr_node() { ctr --address "$SOCKET" --namespace k8s.io "$@"; }
kubectl_node() { "$K8S_BIN/kubectl" --kubeconfig="$dir/kube/kubeconfig" "$@"; }

net() {
  need ip nsenter sysctl
  remove_net
  mkdir -p "$dir"
  ip netns add "$NODE_NETNS"
  ip link add "$NODE_HOST_LINK" type veth peer name "$NODE_LINK"
  ip link set "$NODE_LINK" netns "$NODE_NETNS"
  ip addr add "$NODE_HOST_ADDRESS/30" dev "$NODE_HOST_LINK"
  ip link set "$NODE_HOST_LINK" up
  in_node ip link set lo up
  in_node ip addr add "$NODE_ADDRESS/30" dev "$NODE_LINK"
  in_node ip link set "$NODE_LINK" up
  # The host does not forward, so nothing the node sends leaves this machine.
  in_node ip route add default via "$NODE_HOST_ADDRESS"
  in_node sysctl -qw net.ipv4.ip_forward=1
  log "node network ready: $NODE_HOST_ADDRESS (host) <-> $NODE_ADDRESS (namespace $NODE_NETNS)"
}

remove_net() {
  ip netns del "$NODE_NETNS" 2>/dev/null || true
  ip link del "$NODE_HOST_LINK" 2>/dev/null || true
}

# The sandbox image: pause.c built static, one layer, its entrypoint set by crane against a
# registry that lives on loopback only while the image is made. Cached by source and crane version.
sandbox_image() {
  local digest out
  digest=$( { cat "$ENV_DIR/node/pause.c"; echo "$CRANE_VERSION $SANDBOX_IMAGE"; } | sha256sum | cut -c1-12)
  out=$CACHE_DIR/images/pause-$digest.tar
  if [ ! -f "$out" ]; then
    need musl-gcc
    [ -x "$CRANE" ] || die "crane is not built; run tests/env/build-tools.sh node"
    local work=$dir/pause-build port
    mkdir -p "$work/root" "$(dirname "$out")"
    musl-gcc -static -Os -s -o "$work/root/pause" "$ENV_DIR/node/pause.c"
    tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/root" -cf "$work/layer.tar" pause
    port=$(free_port)
    start_daemon "crane registry" "$work/registry.log" "$work/registry.pid" \
      "$CRANE" registry serve --address "127.0.0.1:$port"
    wait_for_daemon "$work/registry.pid" "$work/registry.log" 20 "crane registry" curl -sf "http://127.0.0.1:$port/v2/"
    "$CRANE" append --insecure --oci-empty-base --platform linux/amd64 -f "$work/layer.tar" \
      -t "127.0.0.1:$port/pause:build" >/dev/null 2>>"$work/registry.log" &&
      "$CRANE" mutate --insecure "127.0.0.1:$port/pause:build" --entrypoint /pause \
        --set-platform "linux/$(go env GOARCH)" -t "$SANDBOX_IMAGE" -o "$out.tmp" >/dev/null 2>>"$work/registry.log" ||
      { stop_daemon "$work/registry.pid"; tail "$work/registry.log" >&2; die "building the sandbox image failed"; }
    stop_daemon "$work/registry.pid"
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

write_containerd_config() {
  mkdir -p "$dir/cni" "$dir/containerd"
  # restrict_oom_score_adj: this machine may not lower oom_score_adj (no CAP_SYS_RESOURCE), so the
  # kubelet's negative values for sandboxes are raised to containerd's own.
  cat >"$dir/containerd.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$SOCKET"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$dir/cni"
TOML
  # Pods on a bridge in the node's namespace; ipMasq so that the host answers them at $NODE_ADDRESS.
  cat >"$dir/cni/10-usersync.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "usersync",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$dir/cni-ipam",
              "ranges": [[{"subnet": "$POD_RANGE"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

write_kubelet_config() {
  # Eviction and image collection are set aside: a shared build machine's disk is often fuller
  # than a node's defaults allow, and the images here cannot be pulled again.
  cat >"$dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCKET
address: $NODE_ADDRESS
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
oomScoreAdj: 0
podLogsDir: $dir/pod-logs
volumePluginDir: $dir/kubelet-plugins
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $dir/kube/pki/ca.crt}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
YAML
  cat >"$dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kube/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_RANGE
oomScoreAdj: 0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

# The kubelet's pods go under $CGROUP_ROOT in every v1 hierarchy; cpuset needs its CPUs and memory
# nodes before anything can join it.
make_cgroup_root() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -e "$hierarchy/cgroup.procs" ] || continue
    mkdir -p "$hierarchy$CGROUP_ROOT"
  done
  local cpuset=/sys/fs/cgroup/cpuset
  if [ -d "$cpuset$CGROUP_ROOT" ]; then
    cat "$cpuset/cpuset.cpus" >"$cpuset$CGROUP_ROOT/cpuset.cpus"
    cat "$cpuset/cpuset.mems" >"$cpuset$CGROUP_ROOT/cpuset.mems"
  fi
}

node_ready() {
  kubectl_node get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

start() {
  need containerd ctr runc nsenter iptables openssl curl
  [ -x "$CNI_BIN/bridge" ] || die "the CNI plugins are missing; run tests/env/install-deps.sh node"
  [ -x "$K8S_BIN/kubelet" ] || die "the kubelet is not built; run tests/env/build-tools.sh node"
  [ -e "/run/netns/$NODE_NETNS" ] || net
  stop_node_processes
  rm -rf "$dir" && mkdir -p "$dir"
  KUBE_FOR_NODE=1 "$ENV_DIR/kube.sh" start "$dir/kube"
  KUBE_FOR_NODE=1 "$ENV_DIR/kube.sh" kubeconfig "$dir/kube" kubelet \
    "/O=system:nodes/CN=system:node:$NODE_NAME"
  KUBE_FOR_NODE=1 "$ENV_DIR/kube.sh" kubeconfig "$dir/kube" kube-proxy "/CN=system:kube-proxy"

  write_containerd_config
  start_daemon containerd "$dir/containerd.log" "$dir/containerd.pid" \
    nsenter --net="/run/netns/$NODE_NETNS" -- containerd --config "$dir/containerd.toml"
  wait_for_daemon "$dir/containerd.pid" "$dir/containerd.log" 30 "containerd" ctr --address "$SOCKET" version
  import "$(sandbox_image)" "$SANDBOX_IMAGE"

  write_kubelet_config
  make_cgroup_root
  start_daemon kubelet "$dir/kubelet.log" "$dir/kubelet.pid" \
    nsenter --net="/run/netns/$NODE_NETNS" -- "$K8S_BIN/kubelet" \
    --config="$dir/kubelet.yaml" --kubeconfig="$dir/kube/kubelet.kubeconfig" \
    --root-dir="$dir/kubelet" --cert-dir="$dir/kubelet-pki" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_ADDRESS"
  start_daemon kube-proxy "$dir/kube-proxy.log" "$dir/kube-proxy.pid" \
    nsenter --net="/run/netns/$NODE_NETNS" -- "$K8S_BIN/kube-proxy" --config="$dir/kube-proxy.yaml"
  wait_for_daemon "$dir/kubelet.pid" "$dir/kubelet.log" 120 "node $NODE_NAME" node_ready

  cat >"$dir/env" <<ENV
export USERSYNC_NODE_DIR=$dir
export USERSYNC_NODE_KUBECONFIG=$dir/kube/kubeconfig
export USERSYNC_NODE_AUDIT_LOG=$dir/kube/audit.log
export USERSYNC_NODE_HOST_ADDRESS=$NODE_HOST_ADDRESS
ENV
  log "node $NODE_NAME ready (KUBECONFIG=$dir/kube/kubeconfig)"
}

import() {
  local archive=${1:?$usage} name=${2:?$usage}
  local base=${name%:*}
  # The archive names its image by tag only (an OCI layout's ref.name) or in full (a Docker
  # archive); --base-name gives the former its repository.
  ctr_node images import --all-platforms --base-name "$base" "$archive" >"$dir/import.log" 2>&1 ||
    { cat "$dir/import.log" >&2; die "importing $archive failed"; }
  # The list is read whole first: `grep -q` stopping early would fail the pipe under pipefail.
  local images
  images=$(ctr_node images ls -q)
  if ! grep -qx "$name" <<<"$images"; then
    ctr_node images tag "$(grep -m1 "^$base:" <<<"$images")" "$name" >/dev/null ||
      die "$archive did not give the image $name"
  fi
  log "imported $name into the node"
}

# The pods' processes (by their cgroups), the containerd shims, then the daemons.
stop_node_processes() {
  stop_daemon "$dir/kubelet.pid"
  stop_daemon "$dir/kube-proxy.pid"
  find /sys/fs/cgroup/*"$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null |
    sort -u | xargs -r kill -KILL 2>/dev/null || true
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $SOCKET" 2>/dev/null || true
  stop_daemon "$dir/containerd.pid"
  if [ -d "$dir" ]; then
    findmnt -rn -o TARGET | grep "^$dir/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  find /sys/fs/cgroup/*"$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

stop() {
  stop_node_processes
  [ -d "$dir/kube" ] && KUBE_FOR_NODE=1 "$ENV_DIR/kube.sh" stop "$dir/kube"
  remove_net
}

case "$cmd" in
  net) net ;;
  start) start ;;
  import) import "${3:-}" "${4:-}" ;;
  stop) stop ;;
  *) die "$usage" ;;
esac
