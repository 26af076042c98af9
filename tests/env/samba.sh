#!/usr/bin/env bash
# samba.sh start|stop|load DIR [LDIF]: a Samba AD domain controller for CORP.EXAMPLE.COM on 127.0.0.1,
# and on the host end of the node's network when that is up (node.sh net), for pods.
#
# Provisioned from scratch in DIR on every start (RFC2307 attributes on, no DNS, only the LDAP and RPC
# services). It listens on the standard ports 389 (StartTLS) and 636 (LDAPS), so one instance serves a
# whole test run. TLS uses DIR/tls, a CA made by certs.sh; DIR/tls/ca.crt is what clients trust.
# load: applies an LDIF (with changetypes) straight to the database, in one batch-mode transaction:
#       several times faster than LDAP adds, and all or nothing.
. "$(dirname "$0")/lib.sh"

SAMBA_REALM=CORP.EXAMPLE.COM
SAMBA_DOMAIN=CORP
SAMBA_BASE_DN=DC=corp,DC=example,DC=com
SAMBA_ADMIN_PASSWORD=${SAMBA_ADMIN_PASSWORD:-Usersync-Adm1n!}

cmd=${1:?usage: samba.sh start|stop|load DIR [LDIF]}
dir=${2:?usage: samba.sh start|stop|load DIR [LDIF]}

samba_ready() {
  LDAPTLS_CACERT=$dir/tls/ca.crt ldapsearch -H ldaps://127.0.0.1:636 -x \
    -D "$SAMBA_DOMAIN\\Administrator" -w "$SAMBA_ADMIN_PASSWORD" -b "$SAMBA_BASE_DN" -s base dn
}

start() {
  need samba samba-tool ldapsearch openssl ldbadd ldbdel
  if ss -ltn 'sport = :636' | grep -q LISTEN; then
    die "port 636 is taken; stop the other LDAP server first (a system slapd or samba service?)"
  fi
  rm -rf "$dir" && mkdir -p "$dir/run" "$dir/ntp"
  "$ENV_DIR/certs.sh" "$dir/tls"
  local interfaces=lo
  node_network_up && interfaces+=" $NODE_HOST_ADDRESS/30"
  log "provisioning Samba AD DC in $dir (interfaces: $interfaces)"
  # allow_sasl_over_tls: NTLM binds without signing are accepted over TLS (as Windows AD does);
  # simple binds in clear text stay refused.
  samba-tool domain provision --targetdir="$dir" --realm="$SAMBA_REALM" --domain="$SAMBA_DOMAIN" \
    --server-role=dc --dns-backend=NONE --use-rfc2307 --host-name=dc1 \
    --adminpass="$SAMBA_ADMIN_PASSWORD" \
    --option="interfaces=$interfaces" --option="bind interfaces only=yes" \
    --option="server services=ldap cldap rpc" \
    --option="pid directory=$dir/run" --option="ntp signd socket directory=$dir/ntp" \
    --option="log file=$dir/samba.log" \
    --option="tls keyfile=$dir/tls/server.key" --option="tls certfile=$dir/tls/server.crt" \
    --option="tls cafile=$dir/tls/ca.crt" \
    --option="ldap server require strong auth=allow_sasl_over_tls" >"$dir/provision.log" 2>&1 ||
    { tail -20 "$dir/provision.log" >&2; die "samba-tool domain provision failed"; }
  # Tests add thousands of objects; password complexity and history only slow that down.
  samba-tool domain passwordsettings set -s "$dir/etc/smb.conf" --complexity=off --history-length=0 \
    --min-pwd-age=0 --max-pwd-age=0 >>"$dir/provision.log" 2>&1
  start_daemon samba "$dir/samba.out" "$dir/samba.pid" samba -s "$dir/etc/smb.conf" -i -M single
  wait_for_daemon "$dir/samba.pid" "$dir/samba.out" 60 "Samba LDAPS on 127.0.0.1:636" samba_ready
  # A domain in use holds deleted objects; incremental reads need one to prove the bind sees them.
  printf 'dn: OU=usersync-tombstone,%s\nobjectClass: organizationalUnit\n' "$SAMBA_BASE_DN" |
    ldbadd --nosync -H "$dir/private/sam.ldb" >>"$dir/provision.log" 2>&1 &&
    ldbdel -H "$dir/private/sam.ldb" "OU=usersync-tombstone,$SAMBA_BASE_DN" >>"$dir/provision.log" 2>&1 ||
    die "cannot create a deleted object in Samba"
  cat >"$dir/env" <<ENV
export USERSYNC_SAMBA_URL=ldap://127.0.0.1:389
export USERSYNC_SAMBA_LDAPS_URL=ldaps://127.0.0.1:636
export USERSYNC_SAMBA_BASE_DN=$SAMBA_BASE_DN
export USERSYNC_SAMBA_DOMAIN=$SAMBA_DOMAIN
export USERSYNC_SAMBA_REALM=$SAMBA_REALM
export USERSYNC_SAMBA_ADMIN_PASSWORD='$SAMBA_ADMIN_PASSWORD'
export USERSYNC_SAMBA_CA=$dir/tls/ca.crt
ENV
  log "Samba AD DC ready: ldaps://127.0.0.1:636 base $SAMBA_BASE_DN"
}

load() {
  local ldif=${1:?usage: samba.sh load DIR LDIF}
  need ldbmodify
  ldbmodify --nosync -o batch_mode:1 -H "$dir/private/sam.ldb" "$ldif" >"$dir/load.log" 2>&1 ||
    { tail -20 "$dir/load.log" >&2; die "loading $ldif into Samba failed"; }
  log "loaded $ldif into Samba: $(tail -1 "$dir/load.log")"
}

case "$cmd" in
  start) start ;;
  stop) stop_daemon "$dir/samba.pid" ;;
  load) load "${3:-}" ;;
  *) die "usage: samba.sh start|stop|load DIR [LDIF]" ;;
esac
