#!/usr/bin/env bash
# Installs the Debian packages the test bed runs (Samba AD DC, OpenLDAP, 389-DS, LDAP and ldb tools)
# and those `cargo xtask image` builds with, when any is missing. Idempotent and quick when
# everything is there. Needs root (or sudo) to install.
# Usage: install-deps.sh [all|testbed|image|node]   (default all)
. "$(dirname "$0")/lib.sh"

TESTBED_PACKAGES=(samba samba-ad-dc samba-ad-provision slapd 389-ds-base libnss3-tools ldap-utils
  ldb-tools openssl curl iproute2 python3)
# Daemons such as slapd and ns-slapd live in /usr/sbin, which is searched too.
TESTBED_COMMANDS=(samba samba-tool slapd slapadd slappasswd ns-slapd certutil ldapsearch ldbmodify
  openssl curl ss python3 go)

# The node (node.sh): containerd and runc, the CNI plugins, iptables for kube-proxy; musl-gcc
# builds the sandbox image's pause.
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables util-linux musl-tools)
NODE_COMMANDS=(containerd ctr runc iptables nsenter musl-gcc)
NODE_FILES=(/usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/portmap)

# The image: musl-gcc for the static builds, the other architecture's gcc for ring's C code and
# the link, qemu to run that binary in the packaging test, and the CA roots the image carries.
IMAGE_PACKAGES=(musl-tools qemu-user-static ca-certificates)
IMAGE_COMMANDS=(musl-gcc)
case "$(uname -m)" in
  aarch64)
    IMAGE_PACKAGES+=(gcc-x86-64-linux-gnu libc6-dev-amd64-cross)
    IMAGE_COMMANDS+=(x86_64-linux-gnu-gcc qemu-x86_64-static) ;;
  *)
    IMAGE_PACKAGES+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
    IMAGE_COMMANDS+=(aarch64-linux-gnu-gcc qemu-aarch64-static) ;;
esac
IMAGE_FILES=(/etc/ssl/certs/ca-certificates.crt)

PACKAGES=() COMMANDS=() FILES=()
case "${1:-all}" in
  testbed) PACKAGES=("${TESTBED_PACKAGES[@]}") COMMANDS=("${TESTBED_COMMANDS[@]}") ;;
  image) PACKAGES=("${IMAGE_PACKAGES[@]}") COMMANDS=("${IMAGE_COMMANDS[@]}") FILES=("${IMAGE_FILES[@]}") ;;
  node) PACKAGES=("${NODE_PACKAGES[@]}") COMMANDS=("${NODE_COMMANDS[@]}") FILES=("${NODE_FILES[@]}") ;;
  all)
    PACKAGES=("${TESTBED_PACKAGES[@]}" "${IMAGE_PACKAGES[@]}" "${NODE_PACKAGES[@]}")
    COMMANDS=("${TESTBED_COMMANDS[@]}" "${IMAGE_COMMANDS[@]}" "${NODE_COMMANDS[@]}")
    FILES=("${IMAGE_FILES[@]}" "${NODE_FILES[@]}") ;;
  *) die "usage: $0 [all|testbed|image|node]" ;;
esac

missing=()
for cmd in "${COMMANDS[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/usr/local/go/bin command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
for file in "${FILES[@]}"; do
  [ -e "$file" ] || missing+=("$file")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${missing[*]}" = go ]; then
  die "the Go toolchain is missing; install Go 1.26 or newer (Kubernetes $KUBERNETES_VERSION is built from source)"
fi

log "installing packages (missing: ${missing[*]})"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Keep the packages' own services from starting: the test bed runs its own instances on these ports.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created_policy=true
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q "${PACKAGES[@]}" >/dev/null
$created_policy && $sudo rm -f "$policy"
for service in slapd samba-ad-dc smbd nmbd winbind containerd; do
  $sudo service "$service" stop >/dev/null 2>&1 || true
done
log "packages installed"
