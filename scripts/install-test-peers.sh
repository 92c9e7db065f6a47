#!/usr/bin/env bash
# Installs the real peers the integration tests start on loopback, from Debian packages:
#   prosody (XMPP server), kamailio (SIP proxy), sip-tester (sipp), slapd + ldap-utils
#   (OpenLDAP directory), dnsmasq-base (DNS server for ENUM NAPTR records), openssl (test CA
#   for the directory's TLS).
# Usage: scripts/install-test-peers.sh           install what is missing (needs root)
#        scripts/install-test-peers.sh --check   list what is missing, exit 1 if anything is
set -euo pipefail

# package:binary pairs
PEERS=(
  "prosody:prosody"
  "kamailio:kamailio"
  "sip-tester:sipp"
  "slapd:slapd"
  "ldap-utils:ldapadd"
  "dnsmasq-base:dnsmasq"
  "openssl:openssl"
)

missing=()
for pair in "${PEERS[@]}"; do
  pkg=${pair%%:*}
  bin=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing test peers: ${missing[*]}"
    exit 1
  fi
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "test peers present: prosody, kamailio, sipp, slapd, ldap-utils, dnsmasq, openssl"
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
