#!/usr/bin/env bash
# certs.sh DIR [SAN...]: a throwaway CA and a server certificate for 127.0.0.1 and the host end of the
# node's network, plus any further subjectAltNames given (`IP:…`, `DNS:…`), signed by it. The name
# localhost is left out on purpose: tests use it as a name the certificate does not cover.
# Writes DIR/ca.crt, DIR/ca.key, DIR/server.crt, DIR/server.key. Reuses them if present.
. "$(dirname "$0")/lib.sh"
need openssl
dir=${1:?usage: certs.sh DIR [SAN...]}
shift
sans="IP:127.0.0.1,IP:$NODE_HOST_ADDRESS,DNS:dc1.corp.example.com"
for san in "$@"; do sans+=",$san"; done
mkdir -p "$dir"
[ -f "$dir/server.crt" ] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=usersync test CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$sans") \
  -out "$dir/server.crt" 2>/dev/null
rm -f "$dir/server.csr"
chmod 600 "$dir"/*.key
