#!/usr/bin/env bash
# Installs the Debian packages the test bed runs (Samba AD DC, OpenLDAP, 389-DS, LDAP and ldb tools)
# when any is missing. Idempotent and quick when everything is there. Needs root (or sudo) to
# install.
. "$(dirname "$0")/lib.sh"

PACKAGES=(samba samba-ad-dc samba-ad-provision slapd 389-ds-base libnss3-tools ldap-utils ldb-tools
  openssl curl iproute2 python3)
# Daemons such as slapd and ns-slapd live in /usr/sbin, which is searched too.
COMMANDS=(samba samba-tool slapd slapadd slappasswd ns-slapd certutil ldapsearch ldbmodify openssl
  curl ss python3 go)

missing=()
for cmd in "${COMMANDS[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/usr/local/go/bin command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${missing[*]}" = go ]; then
  die "the Go toolchain is missing; install Go 1.26 or newer (Kubernetes $KUBERNETES_VERSION is built from source)"
fi

log "installing test-bed packages (missing: ${missing[*]})"
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
for service in slapd samba-ad-dc smbd nmbd winbind; do
  $sudo service "$service" stop >/dev/null 2>&1 || true
done
log "test-bed packages installed"
