#!/usr/bin/env bash
# kube.sh start|stop DIR: a real Kubernetes control plane on 127.0.0.1 for tests and the demo;
# kube.sh restart-apiserver DIR kills its apiserver and starts it again.
#
# etcd, kube-apiserver (RBAC on, ServiceAccount token issuer, audit log) and kube-controller-manager
# (garbage collector, namespace cleanup, default ServiceAccounts), built by build-tools.sh, on free
# ports, state in DIR. Writes DIR/kubeconfig (cluster admin) and DIR/env. There are no nodes: pods never
# run, which the operator does not need.
#
# With KUBE_FOR_NODE=1 (node.sh sets it) the control plane is a whole one for a node: the apiserver
# listens on the host end of the node's network and advertises it as the `kubernetes` Service's
# endpoint, authorizes kubelets (Node, NodeRestriction) and reaches them with a client certificate;
# every controller runs, and kube-scheduler too.
. "$(dirname "$0")/lib.sh"

usage="usage: kube.sh start|stop|restart-apiserver DIR | kube.sh kubeconfig DIR NAME SUBJECT"
cmd=${1:?$usage}
dir=${2:?$usage}
K8S_BIN=$CACHE_DIR/bin/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$CACHE_DIR/bin/etcd-$ETCD_VERSION

for_node=${KUBE_FOR_NODE:-0}
address=127.0.0.1
[ "$for_node" = 1 ] && address=$NODE_HOST_ADDRESS
# The first address of the Service range is the `kubernetes` Service's.
SERVICE_RANGE=10.96.0.0/24
KUBERNETES_SERVICE_IP=10.96.0.1

# client_cert NAME SUBJECT: DIR/pki/NAME.crt and .key, a client certificate signed by the cluster CA.
client_cert() {
  local pki=$dir/pki name=$1 subject=$2
  openssl req -newkey rsa:2048 -nodes -subj "$subject" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

make_pki() {
  local pki=$dir/pki
  "$ENV_DIR/certs.sh" "$pki" "IP:$KUBERNETES_SERVICE_IP" DNS:kubernetes.default.svc DNS:kubernetes.default
  client_cert admin "/O=system:masters/CN=usersync-test-admin"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER: a kubeconfig for DIR/pki/USER.crt.
write_kubeconfig() {
  local file=$1 user=$2 port
  port=$(cat "$dir/apiserver.port")
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: usersync-test
  cluster:
    server: https://$address:$port
    certificate-authority: $dir/pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $dir/pki/$user.crt
    client-key: $dir/pki/$user.key
contexts:
- name: usersync-test
  context: {cluster: usersync-test, user: $user, namespace: default}
current-context: usersync-test
KUBECONFIG
}

# Writes are logged at Metadata level so tests can count exactly what the operator wrote; deletes of
# UserGroups with their request (DeleteOptions), so tests see the preconditions they carry; reads of
# Secrets and ConfigMaps too, so tests see where the operator looked for credentials.
write_audit_policy() {
  cat >"$dir/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [get, list, watch]
  resources: [{group: "", resources: [secrets, configmaps]}]
- level: None
  verbs: [get, list, watch]
- level: Request
  verbs: [delete]
  resources: [{group: usersync.io, resources: [usergroups]}]
- level: Metadata
POLICY
}

apiserver_ready() {
  curl -sf --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    "https://$address:$(cat "$dir/apiserver.port")/readyz"
}

start() {
  need openssl curl python3
  [ -x "$K8S_BIN/kube-apiserver" ] && [ -x "$ETCD_BIN/etcd" ] ||
    die "Kubernetes binaries are not built; run tests/env/build-tools.sh"
  rm -rf "$dir" && mkdir -p "$dir"
  make_pki
  write_audit_policy
  local etcd_port etcd_peer_port api_port
  etcd_port=$(free_port); etcd_peer_port=$(free_port); api_port=$(free_port)
  echo "$api_port" >"$dir/apiserver.port"

  # No fsync: the data is thrown away after the run, and fsync dominates etcd latency on shared disks.
  start_daemon etcd "$dir/etcd.log" "$dir/etcd.pid" "$ETCD_BIN/etcd" \
    --name=usersync-test --data-dir="$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="usersync-test=http://127.0.0.1:$etcd_peer_port"
  wait_for_daemon "$dir/etcd.pid" "$dir/etcd.log" 30 "etcd on 127.0.0.1:$etcd_port" curl -sf "http://127.0.0.1:$etcd_port/health"

  local node_flags=(--authorization-mode=RBAC --endpoint-reconciler-type=none)
  local controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller
  if [ "$for_node" = 1 ]; then
    client_cert kubelet-client "/O=system:masters/CN=usersync-test-apiserver-kubelet-client"
    node_flags=(--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
      --kubelet-client-certificate="$dir/pki/kubelet-client.crt"
      --kubelet-client-key="$dir/pki/kubelet-client.key"
      --kubelet-preferred-address-types=InternalIP)
    controllers='*'
  fi
  local apiserver=("$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address="$address" --advertise-address="$address" --secure-port="$api_port" \
    --tls-cert-file="$dir/pki/server.crt" --tls-private-key-file="$dir/pki/server.key" \
    --client-ca-file="$dir/pki/ca.crt" \
    "${node_flags[@]}" \
    --service-account-issuer="https://$address:$api_port" \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_RANGE" \
    --audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking \
    --cert-dir="$dir/apiserver-certs")
  # Kept, so that `restart-apiserver` starts the same apiserver again.
  printf '%q ' "${apiserver[@]}" >"$dir/apiserver.cmd"
  start_daemon kube-apiserver "$dir/apiserver.log" "$dir/apiserver.pid" "${apiserver[@]}"
  wait_for_daemon "$dir/apiserver.pid" "$dir/apiserver.log" 120 "kube-apiserver on $address:$api_port" apiserver_ready
  write_kubeconfig "$dir/kubeconfig" admin

  start_daemon kube-controller-manager "$dir/controller-manager.log" "$dir/controller-manager.pid" \
    "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$dir/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 \
    --controllers="$controllers" \
    --root-ca-file="$dir/pki/ca.crt" --service-account-private-key-file="$dir/pki/sa.key" \
    --concurrent-gc-syncs=5
  wait_for_daemon "$dir/controller-manager.pid" "$dir/controller-manager.log" 60 "the default ServiceAccount" "$K8S_BIN/kubectl" --kubeconfig="$dir/kubeconfig" get serviceaccount default
  if [ "$for_node" = 1 ]; then
    start_daemon kube-scheduler "$dir/scheduler.log" "$dir/scheduler.pid" "$K8S_BIN/kube-scheduler" \
      --kubeconfig="$dir/kubeconfig" --leader-elect=false \
      --bind-address=127.0.0.1 --secure-port="$(free_port)"
  fi

  cat >"$dir/env" <<ENV
export KUBECONFIG=$dir/kubeconfig
export USERSYNC_AUDIT_LOG=$dir/audit.log
export PATH=$K8S_BIN:$CACHE_DIR/bin/helm-$HELM_VERSION:\$PATH
ENV
  log "Kubernetes $KUBERNETES_VERSION ready: https://$address:$api_port (KUBECONFIG=$dir/kubeconfig)"
}

# The apiserver killed (SIGKILL, no graceful shutdown), down for DOWN_SECONDS (default 3), then
# started again as it was; etcd and everything else keep running.
restart_apiserver() {
  local pid
  pid=$(cat "$dir/apiserver.pid")
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  log "kube-apiserver killed; down for ${DOWN_SECONDS:-3}s"
  sleep "${DOWN_SECONDS:-3}"
  local apiserver
  eval "apiserver=($(cat "$dir/apiserver.cmd"))"
  start_daemon kube-apiserver "$dir/apiserver.log" "$dir/apiserver.pid" "${apiserver[@]}"
  wait_for_daemon "$dir/apiserver.pid" "$dir/apiserver.log" 120 "kube-apiserver" apiserver_ready
}

stop() {
  stop_daemon "$dir/scheduler.pid"
  stop_daemon "$dir/controller-manager.pid"
  stop_daemon "$dir/apiserver.pid"
  stop_daemon "$dir/etcd.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart-apiserver) restart_apiserver ;;
  # A client certificate for SUBJECT and DIR/NAME.kubeconfig using it (a kubelet's, kube-proxy's).
  kubeconfig)
    name=${3:?$usage} subject=${4:?$usage}
    client_cert "$name" "$subject"
    write_kubeconfig "$dir/$name.kubeconfig" "$name" ;;
  *) die "$usage" ;;
esac
