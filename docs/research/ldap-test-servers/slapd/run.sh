#!/bin/bash
# usage: run.sh DIR PORT TLSPORT
set -e
DIR=$1; PORT=$2; TLSPORT=$3
rm -rf "$DIR"; mkdir -p "$DIR"/slapd.d "$DIR"/data "$DIR"/tls
t0=$(date +%s.%N)
# TLS: self-signed CA + server cert (SAN localhost, 127.0.0.1)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=test-ca" \
  -keyout "$DIR/tls/ca.key" -out "$DIR/tls/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$DIR/tls/server.key" -out "$DIR/tls/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > "$DIR/tls/ext.cnf"
openssl x509 -req -in "$DIR/tls/server.csr" -CA "$DIR/tls/ca.crt" -CAkey "$DIR/tls/ca.key" \
  -CAcreateserial -days 2 -extfile "$DIR/tls/ext.cnf" -out "$DIR/tls/server.crt" 2>/dev/null
t1=$(date +%s.%N)
sed "s#@DIR@#$DIR#g" config.ldif.tmpl > "$DIR/config.ldif"
slapadd -n0 -F "$DIR/slapd.d" -l "$DIR/config.ldif"
t2=$(date +%s.%N)
slapadd -n1 -F "$DIR/slapd.d" -l seed.ldif -q
t3=$(date +%s.%N)
echo "tls: $(echo "$t1-$t0"|bc)s  slapadd-config: $(echo "$t2-$t1"|bc)s  slapadd-seed: $(echo "$t3-$t2"|bc)s"
