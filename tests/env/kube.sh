#!/usr/bin/env bash
# kube.sh start|stop DIR: a real Kubernetes control plane on 127.0.0.1 for tests and the demo.
#
# etcd, kube-apiserver (RBAC on, ServiceAccount token issuer, audit log) and kube-controller-manager
# (garbage collector, namespace cleanup, default ServiceAccounts), built by build-tools.sh, on free
# ports, state in DIR. Writes DIR/kubeconfig (cluster admin) and DIR/env. There are no nodes: pods never
# run, which the operator does not need.
. "$(dirname "$0")/lib.sh"

cmd=${1:?usage: kube.sh start|stop DIR}
dir=${2:?usage: kube.sh start|stop DIR}
K8S_BIN=$CACHE_DIR/bin/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$CACHE_DIR/bin/etcd-$ETCD_VERSION

make_pki() {
  local pki=$dir/pki
  "$ENV_DIR/certs.sh" "$pki"
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=usersync-test-admin" \
    -keyout "$pki/admin.key" -out "$pki/admin.csr" 2>/dev/null
  openssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$pki/admin.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  rm -f "$pki/admin.csr"
}

write_kubeconfig() {
  local port=$1
  cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: usersync-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: usersync-test
  context: {cluster: usersync-test, user: admin, namespace: default}
current-context: usersync-test
KUBECONFIG
}

# Writes are logged at Metadata level so tests can count exactly what the operator wrote.
write_audit_policy() {
  cat >"$dir/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [get, list, watch]
- level: Metadata
POLICY
}

apiserver_ready() {
  curl -sf --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    "https://127.0.0.1:$(cat "$dir/apiserver.port")/readyz"
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

  start_daemon kube-apiserver "$dir/apiserver.log" "$dir/apiserver.pid" "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --tls-cert-file="$dir/pki/server.crt" --tls-private-key-file="$dir/pki/server.key" \
    --client-ca-file="$dir/pki/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$api_port" \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 \
    --endpoint-reconciler-type=none \
    --audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking \
    --cert-dir="$dir/apiserver-certs"
  wait_for_daemon "$dir/apiserver.pid" "$dir/apiserver.log" 120 "kube-apiserver on 127.0.0.1:$api_port" apiserver_ready
  write_kubeconfig "$api_port"

  start_daemon kube-controller-manager "$dir/controller-manager.log" "$dir/controller-manager.pid" \
    "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$dir/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 \
    --controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller \
    --concurrent-gc-syncs=5
  wait_for_daemon "$dir/controller-manager.pid" "$dir/controller-manager.log" 60 "the default ServiceAccount" "$K8S_BIN/kubectl" --kubeconfig="$dir/kubeconfig" get serviceaccount default

  cat >"$dir/env" <<ENV
export KUBECONFIG=$dir/kubeconfig
export USERSYNC_AUDIT_LOG=$dir/audit.log
export PATH=$K8S_BIN:$CACHE_DIR/bin/helm-$HELM_VERSION:\$PATH
ENV
  log "Kubernetes $KUBERNETES_VERSION ready: https://127.0.0.1:$api_port (KUBECONFIG=$dir/kubeconfig)"
}

stop() {
  stop_daemon "$dir/controller-manager.pid"
  stop_daemon "$dir/apiserver.pid"
  stop_daemon "$dir/etcd.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) die "usage: kube.sh start|stop DIR" ;;
esac
