#!/usr/bin/env bash
# 389ds.sh start|stop|load DIR [LDIF]: a 389 Directory Server for dc=example,dc=org on 127.0.0.1.
#
# start: a fresh instance entirely under DIR (config, db, logs, run and lock dirs), with the memberOf
#        plugin on, on free ports: plain LDAP (StartTLS available) and LDAPS, TLS from a CA made by
#        certs.sh (DIR/tls/ca.crt). Writes DIR/env with the addresses.
# load:  adds LDIF online with ldapadd -c: for ~1000 entries that beats an offline ldif2db, which needs
#        a stop and a restart and leaves memberOf unset.
#
# dscreate is not used: it insists on /etc/dirsrv/slapd-NAME and systemd. Instead dse.ldif is rendered
# from the package's own template (what dscreate does too) and ns-slapd is run in the foreground.
. "$(dirname "$0")/lib.sh"

DS389_BASE_DN=dc=example,dc=org
DS389_ADMIN_DN="cn=Directory Manager"
DS389_ADMIN_PASSWORD=${DS389_ADMIN_PASSWORD:-usersync-admin}
DS_DATA=/usr/share/dirsrv/data

cmd=${1:?usage: 389ds.sh start|stop|load DIR [LDIF]}
dir=${2:?usage: 389ds.sh start|stop|load DIR [LDIF]}
PATH=$PATH:/usr/sbin

# dse.ldif from the template, every path under DIR; ldapi is off (its socket path has a length limit).
# Added: listen on 127.0.0.1 only, LDAPS on, memberOf and referential integrity on (as in slapd.sh),
# small fixed caches instead of ones sized to the machine's memory, and no fsync per write (test data).
write_config() {
  local port=$1 tls_port=$2 hash c=$dir/config
  hash=$(pwdhash -s PBKDF2-SHA512 "$DS389_ADMIN_PASSWORD")
  mkdir -p "$c/schema" "$dir"/{db,log,run,lock,tmp,ldif,bak}
  cp /etc/dirsrv/schema/99user.ldif "$c/schema/"
  cp /etc/dirsrv/config/slapd-collations.conf /etc/dirsrv/config/certmap.conf "$c/"
  sed -e "s|%schema_dir%|$c/schema|; s|%config_dir%|$c|; s|%cert_dir%|$c|" \
    -e "s|%lock_dir%|$dir/lock|; s|%tmp_dir%|$dir/tmp|; s|%ldif_dir%|$dir/ldif|; s|%bak_dir%|$dir/bak|" \
    -e "s|%run_dir%|$dir/run|; s|%inst_dir%|$dir|; s|%log_dir%|$dir/log|g; s|%db_dir%|$dir/db|" \
    -e "s|%db_home_dir%|$dir/db|; s|%db_lib%|bdb|; s|%fqdn%|localhost|; s|%ds_port%|$port|" \
    -e "s|%ds_user%|$(id -un)|; s|%rootdn%|$DS389_ADMIN_DN|; s|%ds_passwd%|$hash|; s|%ds_suffix%|$DS389_BASE_DN|" \
    -e "s|%ldapi_enabled%|off|; s|%ldapi%|$dir/run/slapd.socket|; s|%ldapi_autobind%|off|" \
    -e "/^nsslapd-port:/a nsslapd-listenhost: 127.0.0.1\nnsslapd-securelistenhost: 127.0.0.1\nnsslapd-secureport: $tls_port\nnsslapd-security: on" \
    -e "/^dn: cn=\(MemberOf Plugin\|referential integrity postoperation\),/,/^$/ s/^nsslapd-pluginenabled: off/nsslapd-pluginenabled: on/" \
    -e "/^nsslapd-backend-implement:/a nsslapd-cache-autosize: 0\nnsslapd-dbcachesize: 33554432\nnsslapd-db-durable-transaction: off" \
    "$DS_DATA/template-dse.ldif" >"$c/dse.ldif"
  grep -q % "$c/dse.ldif" && die "unrendered placeholder in $c/dse.ldif"
  # ns-slapd reads TLS from an NSS database (no password) in the config dir: Server-Cert and the CA.
  certutil -N -d "sql:$c" --empty-password
  openssl pkcs12 -export -name Server-Cert -in "$dir/tls/server.crt" -inkey "$dir/tls/server.key" \
    -passout pass: -out "$dir/tls/server.p12"
  pk12util -i "$dir/tls/server.p12" -d "sql:$c" -W '' -K '' >/dev/null && rm -f "$dir/tls/server.p12"
  certutil -A -d "sql:$c" -n "usersync test CA" -t CT,, -a -i "$dir/tls/ca.crt"
}

# The backend and its suffix entry are added online, as dscreate does, so default indexes are made.
backend_ldif() {
  cat <<LDIF
dn: cn=userRoot,cn=ldbm database,cn=plugins,cn=config
objectClass: top
objectClass: extensibleObject
objectClass: nsBackendInstance
cn: userRoot
nsslapd-suffix: $DS389_BASE_DN

dn: cn="$DS389_BASE_DN",cn=mapping tree,cn=config
objectClass: top
objectClass: extensibleObject
objectClass: nsMappingTree
cn: $DS389_BASE_DN
nsslapd-state: backend
nsslapd-backend: userRoot

LDIF
}

# 389-ds denies what no ACI allows: let any bound user read everything but passwords.
seed_ldif() {
  cat <<LDIF
dn: $DS389_BASE_DN
objectClass: top
objectClass: domain
dc: example
aci: (targetattr != "userPassword")(version 3.0; acl "usersync tests: bound users read"; allow (read, search, compare) userdn = "ldap:///all";)

LDIF
}

# timeout: a server that accepts but never answers must not hang the poll.
ds_ready() {
  LDAPTLS_CACERT=$dir/tls/ca.crt timeout 5 ldapsearch -H "ldaps://127.0.0.1:$(cat "$dir/tls_port")" -x \
    -D "$DS389_ADMIN_DN" -w "$DS389_ADMIN_PASSWORD" -b "" -s base namingContexts
}

# Line-buffered, so an error in the log comes right after the entry it is about.
ds_add() {
  stdbuf -oL ldapadd -H "ldap://127.0.0.1:$(cat "$dir/port")" -x -D "$DS389_ADMIN_DN" -w "$DS389_ADMIN_PASSWORD" "$@"
}

run_ds() {
  # A NOTIFY_SOCKET (nobody listens there) keeps ns-slapd in the foreground, as under systemd, so
  # stop_daemon owns it; -d would do that too but silences the error log.
  NOTIFY_SOCKET=$dir/run/notify start_daemon ns-slapd "$dir/log/console" "$dir/ns-slapd.pid" \
    ns-slapd -D "$dir/config" -i "$dir/run/slapd.pid"
  wait_for_daemon "$dir/ns-slapd.pid" "$dir/log/errors" 60 "ns-slapd on 127.0.0.1:$(cat "$dir/port")" ds_ready
}

start() {
  need ns-slapd pwdhash certutil pk12util ldapsearch ldapadd openssl
  stop_ds  # an instance left running in DIR would outlive its files
  rm -rf "$dir" && mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)  # dse.ldif needs absolute paths
  "$ENV_DIR/certs.sh" "$dir/tls"
  local port tls_port
  port=$(free_port); tls_port=$(free_port)
  echo "$port" >"$dir/port"; echo "$tls_port" >"$dir/tls_port"
  write_config "$port" "$tls_port"
  run_ds
  { backend_ldif; seed_ldif; } | ds_add >/dev/null || die "creating the $DS389_BASE_DN backend failed"
  cat >"$dir/env" <<ENV
export USERSYNC_DS389_URL=ldap://127.0.0.1:$port
export USERSYNC_DS389_LDAPS_URL=ldaps://127.0.0.1:$tls_port
export USERSYNC_DS389_BASE_DN=$DS389_BASE_DN
export USERSYNC_DS389_ADMIN_DN='$DS389_ADMIN_DN'
export USERSYNC_DS389_ADMIN_PASSWORD='$DS389_ADMIN_PASSWORD'
export USERSYNC_DS389_CA=$dir/tls/ca.crt
ENV
  log "389-ds ready: ldap://127.0.0.1:$port ldaps://127.0.0.1:$tls_port base $DS389_BASE_DN"
}

load() {
  local ldif=${1:?usage: 389ds.sh load DIR LDIF}
  # Online, so the memberOf plugin fills memberOf (ldif2db would not); -c reports every bad entry.
  ds_add -c -f "$ldif" >"$dir/ldapadd.log" 2>&1 ||
    { grep -v '^$' "$dir/ldapadd.log" | tail -20 >&2; die "ldapadd of $ldif failed"; }
}

# A clean shutdown flushes the database; give it longer than stop_daemon's 5s before the KILL.
stop_ds() {
  [ -f "$dir/ns-slapd.pid" ] || return 0
  local pid; pid=$(cat "$dir/ns-slapd.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  stop_daemon "$dir/ns-slapd.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop_ds ;;
  load) load "${3:-}" ;;
  *) die "usage: 389ds.sh start|stop|load DIR [LDIF]" ;;
esac
