-- Prosody for the scaled bridge topology (docker-compose.yml, docs/deploy.md).
-- Only what the bridge needs is set here; see https://prosody.im/doc/configure for the rest.

data_path = "/var/lib/prosody"
log = { { levels = { min = "info" }, to = "console" } }

admins = { }

modules_enabled = {
    "roster"; "saslauth"; "tls"; "dialback"; "disco";
    "carbons"; "pep"; "private"; "vcard4"; "vcard_legacy";
    "version"; "uptime"; "time"; "ping"; "register";
    "admin_adhoc";
}

allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_hashed"
certificates = "certs"

-- XEP-0114: the component port listens on the compose network only (not published), so
-- only the bridge's XMPP edge reaches it. Prosody takes ONE connection per component name:
-- a second XMPP edge with the same name is refused, which is why exactly one runs.
component_ports = { 5347 }
component_interfaces = { "0.0.0.0" }

VirtualHost "xmpp.example.org"

-- Must match xmpp.component and xmpp.secret in deploy/bridge/xmpp-edge.yaml.
Component "sip.xmpp.example.org"
    component_secret = "change-me-component-secret"
