#!/usr/bin/env bash
# Installs the real peers the integration tests start on loopback, from Debian packages:
#   prosody (XMPP server), kamailio (SIP proxy), sip-tester (sipp), slapd + ldap-utils
#   (OpenLDAP directory), dnsmasq-base (DNS server for ENUM NAPTR records), openssl (test CA
#   for the directory's TLS), kamailio-presence-modules + kamailio-sqlite-modules (Kamailio as a
#   presence server for the presence tests), redis-server (the Redis queue and state backends;
#   the tests start their own on a free port), docker-compose (validates docker-compose.yml; no
#   Docker engine is needed or started), ejabberd (the second XMPP server the bridge is tested
#   against; the tests start their own), kamailio-xmpp-modules (Kamailio's own SIP-XMPP gateway,
#   which `npm run bench:e2e` runs beside the bridge; not needed by the tests),
#   kamailio-tls-modules (Kamailio's tls module, so a Kamailio edge proxy can be a federation
#   partner over mutual TLS in the federation tests).
# Usage: scripts/install-test-peers.sh           install what is missing (needs root)
#        scripts/install-test-peers.sh --check   list what is missing, exit 1 if anything is
set -euo pipefail

# package:binary pairs (a binary starting with / is a file that must exist)
PEERS=(
  "prosody:prosody"
  "kamailio:kamailio"
  "kamailio-presence-modules:/usr/lib/x86_64-linux-gnu/kamailio/modules/presence_xml.so"
  "kamailio-sqlite-modules:/usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so"
  "sip-tester:sipp"
  "slapd:slapd"
  "ldap-utils:ldapadd"
  "dnsmasq-base:dnsmasq"
  "openssl:openssl"
  "redis-server:redis-server"
  "docker-compose:docker-compose"
  "ejabberd:ejabberdctl"
  "kamailio-xmpp-modules:/usr/lib/x86_64-linux-gnu/kamailio/modules/xmpp.so"
  "kamailio-tls-modules:/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so"
)

missing=()
for pair in "${PEERS[@]}"; do
  pkg=${pair%%:*}
  bin=${pair##*:}
  if [ "${bin#/}" != "$bin" ]; then
    [ -e "$bin" ] || missing+=("$pkg")
  else
    command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing test peers: ${missing[*]}"
    exit 1
  fi
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "test peers present: prosody, kamailio (+ presence, sqlite modules), sipp, slapd, ldap-utils, dnsmasq, openssl, redis-server, docker-compose, ejabberd, kamailio-xmpp-modules, kamailio-tls-modules"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "missing test peers: ${missing[*]}; run as root: sudo scripts/install-test-peers.sh" >&2
  exit 1
fi

echo "installing test peers from Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The tests start their own private instances on free loopback ports; services the packages
# may have started (on systemd machines) are left alone and do not collide with them.
echo "test peers installed: ${missing[*]}"
