#!/usr/bin/env bash
# slapd.sh start|stop|load DIR [LDIF]: an OpenLDAP slapd for dc=example,dc=org on 127.0.0.1.
#
# start: a fresh mdb database with the cosine, inetorgperson and nis schemas and the memberof, refint
#        and syncprov overlays, on free ports: plain LDAP (StartTLS available) and LDAPS, TLS from a CA
#        made by certs.sh (DIR/tls/ca.crt). Writes DIR/env with the addresses.
# load:  bulk-loads LDIF offline with slapadd (stops and restarts slapd), for large fixtures.
. "$(dirname "$0")/lib.sh"

SLAPD_BASE_DN=dc=example,dc=org
SLAPD_ADMIN_DN=cn=admin,dc=example,dc=org
SLAPD_ADMIN_PASSWORD=${SLAPD_ADMIN_PASSWORD:-usersync-admin}
SLAPD_SESSIONLOG=${SLAPD_SESSIONLOG:-200}
# The database's size limit (a mapping, not space taken): 4 GiB holds a few hundred thousand users.
SLAPD_MAXSIZE=${SLAPD_MAXSIZE:-4294967296}
MODULE_DIR=/usr/lib/ldap
SCHEMA_DIR=/etc/ldap/schema

cmd=${1:?usage: slapd.sh start|stop|load DIR [LDIF]}
dir=${2:?usage: slapd.sh start|stop|load DIR [LDIF]}

write_config() {
  local hash
  hash=$(slappasswd -s "$SLAPD_ADMIN_PASSWORD")
  cat >"$dir/slapd.conf" <<CONF
include $SCHEMA_DIR/core.schema
include $SCHEMA_DIR/cosine.schema
include $SCHEMA_DIR/inetorgperson.schema
include $SCHEMA_DIR/nis.schema

modulepath $MODULE_DIR
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload syncprov

pidfile $dir/slapd.pid.real
argsfile $dir/slapd.args
TLSCACertificateFile $dir/tls/ca.crt
TLSCertificateFile $dir/tls/server.crt
TLSCertificateKeyFile $dir/tls/server.key
sizelimit unlimited

database mdb
maxsize $SLAPD_MAXSIZE
suffix "$SLAPD_BASE_DN"
rootdn "$SLAPD_ADMIN_DN"
rootpw $hash
directory $dir/data
index objectClass eq
index entryUUID,entryCSN eq
index uid,cn,memberUid eq,sub
index member,uniqueMember eq

overlay syncprov
syncprov-checkpoint 100 10
# Deletions and entries leaving a search are reported from this log; older cookies get a present list.
syncprov-sessionlog $SLAPD_SESSIONLOG
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member uniqueMember
CONF
}

seed_ldif() {
  cat <<LDIF
dn: $SLAPD_BASE_DN
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

LDIF
}

slapd_ready() {
  ldapsearch -H "ldap://127.0.0.1:$(cat "$dir/port")" -x -D "$SLAPD_ADMIN_DN" -w "$SLAPD_ADMIN_PASSWORD" \
    -b "$SLAPD_BASE_DN" -s base dn
}

run_slapd() {
  local port=$1 tls_port=$2
  local urls="ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tls_port/"
  node_network_up && urls+=" ldap://$NODE_HOST_ADDRESS:$port/ ldaps://$NODE_HOST_ADDRESS:$tls_port/"
  # -d 0 keeps slapd in the foreground so stop_daemon owns it.
  start_daemon slapd "$dir/slapd.log" "$dir/slapd.pid" slapd -d 0 -f "$dir/slapd.conf" -h "$urls"
  wait_for_daemon "$dir/slapd.pid" "$dir/slapd.log" 30 "slapd on 127.0.0.1:$port" slapd_ready
}

start() {
  need slapd slapadd slappasswd ldapsearch openssl
  rm -rf "$dir" && mkdir -p "$dir/data"
  "$ENV_DIR/certs.sh" "$dir/tls"
  write_config
  seed_ldif | slapadd -q -f "$dir/slapd.conf" >/dev/null 2>"$dir/slapadd.log" ||
    { cat "$dir/slapadd.log" >&2; die "slapadd of the base entry failed"; }
  local port tls_port
  port=$(free_port); tls_port=$(free_port)
  echo "$port" >"$dir/port"; echo "$tls_port" >"$dir/tls_port"
  run_slapd "$port" "$tls_port"
  cat >"$dir/env" <<ENV
export USERSYNC_SLAPD_URL=ldap://127.0.0.1:$port
export USERSYNC_SLAPD_LDAPS_URL=ldaps://127.0.0.1:$tls_port
export USERSYNC_SLAPD_BASE_DN=$SLAPD_BASE_DN
export USERSYNC_SLAPD_ADMIN_DN=$SLAPD_ADMIN_DN
export USERSYNC_SLAPD_ADMIN_PASSWORD=$SLAPD_ADMIN_PASSWORD
export USERSYNC_SLAPD_CA=$dir/tls/ca.crt
ENV
  log "slapd ready: ldap://127.0.0.1:$port ldaps://127.0.0.1:$tls_port base $SLAPD_BASE_DN"
}

load() {
  local ldif=${1:?usage: slapd.sh load DIR LDIF}
  stop_daemon "$dir/slapd.pid"
  # -q skips consistency checks, the fast path for bulk loads of generated data.
  # -w sets the contextCSN to the newest loaded entry, as a server that made those changes has it.
  slapadd -q -w -f "$dir/slapd.conf" -l "$ldif" 2>"$dir/slapadd.log" ||
    { tail -20 "$dir/slapadd.log" >&2; die "slapadd of $ldif failed"; }
  run_slapd "$(cat "$dir/port")" "$(cat "$dir/tls_port")"
}

case "$cmd" in
  start) start ;;
  stop) stop_daemon "$dir/slapd.pid" ;;
  load) load "${3:-}" ;;
  *) die "usage: slapd.sh start|stop|load DIR [LDIF]" ;;
esac
