#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_verify
short_description: Prove that a Mastercard credential works, from the host that uses it
version_added: 0.1.0
description:
  - Uses a credential the way the application does, with the files on the host where the task runs,
    and reports whether it worked, the HTTP status, the latency and the identifier used.
  - V(mtls) makes an HTTPS request that presents the client certificate and its key.
  - V(oauth1) makes a request signed with C(mastercard-oauth1-signer) using the consumer key and the signing key.
  - V(oauth2) exchanges a C(private_key_jwt) client assertion and a DPoP proof for an access token at O(token_url)
    with C(mastercard-oauth2-client), retrying once with the server's DPoP nonce, then optionally calls O(url)
    with the DPoP-bound token.
  - Before sending anything the module checks the certificate locally (validity window, key/certificate match,
    O(expected_fingerprint)); a credential that fails there is never sent.
  - The module does not call the Mastercard Developers API; it talks only to the probe or token endpoint.
    It is therefore not part of the C(mcdev.credentials.api) action group, so that the Developers API
    C(consumer_key) set in C(module_defaults) can never leak into a probe.
  - With O(record), a successful verification is also recorded on the host, in the C(meta.json) of the
    deployed version (C(verified_fingerprint), C(verified_at)), exactly as
    M(mcdev.credentials.mc_deploy) with O(mcdev.credentials.mc_deploy#module:state=verified) does, so that
    no separate task is needed. A failed verification records nothing.
  - Right after a deploy, O(mcdev.credentials.mc_deploy#module:verify) of M(mcdev.credentials.mc_deploy) runs the
    same probe and record in the deploy task itself.
  - Nothing secret (private key, passwords, access token) is returned or logged.
  - The probes honour C(HTTPS_PROXY) and C(NO_PROXY) of the module's environment (an HTTP proxy, through a
    C(CONNECT) tunnel, so TLS and the client certificate stay end to end).
author:
  - mcdev.credentials maintainers (@mcdev)
requirements:
  - cryptography
  - requests (for V(oauth2))
  - mastercard-oauth1-signer (for V(oauth1))
  - mastercard-oauth2-client (for V(oauth2))
extends_documentation_fragment:
  - mcdev.credentials.attributes
  - mcdev.credentials.attributes.idempotent
attributes:
  check_mode:
    support: full
    details:
      - The probe only reads; it runs in check mode too, because proving a credential changes nothing.
      - With O(record), check mode reports whether C(meta.json) would change and writes nothing.
  diff_mode:
    support: full
    details: With O(record), the diff shows the recorded verification (credential id, fingerprint, time); without it, there is nothing to show.
  idempotent:
    support: full
    details: With O(record), recording a fingerprint that is already recorded as verified changes nothing.
options:
  kind:
    description: How the credential is used.
    type: str
    required: true
    choices: [mtls, oauth1, oauth2]
  url:
    description:
      - The HTTPS URL of the probe to call.
      - Required for V(mtls) and V(oauth1). For V(oauth2) it is the optional resource called with the
        DPoP-bound token; without it only the token exchange is done.
    type: str
  method:
    description: HTTP method of the probe request.
    type: str
    default: GET
    choices: [GET, POST, HEAD]
  pkcs12_path:
    description:
      - PKCS#12 keystore holding the private key (and, for V(mtls), the client certificate).
      - Mutually exclusive with O(private_key_path).
    type: path
  pkcs12_password:
    description: Password of O(pkcs12_path).
    type: str
  private_key_path:
    description: Private key in PEM (PKCS#1 or PKCS#8) or DER (PKCS#8) form.
    type: path
  private_key_password:
    description: Passphrase of an encrypted O(private_key_path).
    type: str
  certificate_path:
    description:
      - Certificate (PEM or DER; a PEM file may carry the chain after the leaf).
      - Required for V(mtls) unless O(pkcs12_path) contains the certificate. Optional for OAuth keys;
        when given, its validity is checked locally and its fingerprint is reported.
    type: path
  expected_fingerprint:
    description:
      - SHA-256 fingerprint the local certificate must have (hex, colons and case ignored).
      - Proves the host carries the credential you think it does before it is used.
    type: str
  consumer_key:
    description: The OAuth 1.0a consumer key of the project key (for V(oauth1)).
    type: str
  client_id:
    description: The OAuth 2.0 client ID (for V(oauth2)).
    type: str
  kid:
    description: The key ID of the OAuth 2.0 signing key (for V(oauth2)).
    type: str
  token_url:
    description: The OAuth 2.0 token endpoint (for V(oauth2)), for example C(https://sandbox.api.mastercard.com/oauth/token).
    type: str
  issuer:
    description:
      - The authorization server's issuer, the audience of the client assertion.
      - Defaults to the scheme and host of O(token_url).
      - Mastercard's documentation names both C(https://api.mastercard.com/oauth/token) and C(https://auth.mastercard.com);
        when the issuer is not the token endpoint's origin, set it here, or the token endpoint refuses the assertion
        with C(invalid_client) (the failure says which audience was sent).
    type: str
  scopes:
    description: Scopes to request in the token exchange.
    type: list
    elements: str
    default: []
  ca_path:
    description: CA bundle (PEM) used to verify the server certificate of the probe, for example the emulator's CA.
    type: path
  validate_certs:
    description: Verify the server certificate. Turn off only for a throw-away test endpoint.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the connection and for each answer.
    type: int
    default: 10
  fail_on_error:
    description:
      - When V(true), a credential that does not work fails the task.
      - When V(false), the task succeeds and returns RV(success=false) with the cause, so that a
        C(block)/C(rescue) or a later task can act on it.
      - Bad options (unreadable files, missing options) always fail the task.
    type: bool
    default: true
  record:
    description:
      - Record a successful verification on this host, in
        C(<path>/<name>/versions/<credential_id>/meta.json), as
        M(mcdev.credentials.mc_deploy) with O(mcdev.credentials.mc_deploy#module:state=verified) does.
        C(verified_fingerprint) becomes the fingerprint of the certificate the probe used, C(verified_at)
        the current time.
      - Only when the probe succeeded. The version must be the one C(current) points at and its
        C(meta.json) must hold the same fingerprint; otherwise the task fails and nothing is written.
      - The probe must use a certificate (O(certificate_path), or a O(pkcs12_path) that contains it), so
        that the fingerprint recorded is the one proved.
      - Without it (the default), the module writes nothing.
    type: dict
    suboptions:
      path:
        description: The base folder on this host, the same as M(mcdev.credentials.mc_deploy)'s O(mcdev.credentials.mc_deploy#module:path).
        type: path
        required: true
      name:
        description: The credential's folder under O(record.path), as M(mcdev.credentials.mc_deploy)'s O(mcdev.credentials.mc_deploy#module:name).
        type: str
        required: true
      credential_id:
        description: The version that was verified (the Developers API credential id).
        type: str
        required: true
      owner:
        description: Owner of the rewritten C(meta.json) (name or uid). Default is the user the module runs as.
        type: str
      group:
        description: Group of the rewritten C(meta.json) (name or gid).
        type: str
notes:
  - The private key reaches the TLS library through a file encrypted with a one-time passphrase, in a
    private temporary directory that is removed as soon as the key is loaded.
  - C(changed) is V(true) only when O(record) writes C(meta.json) (or, in check mode, would write it); the
    probe itself never changes anything.
seealso:
  - module: mcdev.credentials.mc_deploy
  - module: mcdev.credentials.mc_credential_info
  - module: mcdev.credentials.mc_revoke
"""

EXAMPLES = r"""
- name: Prove the deployed mTLS certificate works from this host
  mcdev.credentials.mc_verify:
    kind: mtls
    url: https://sandbox.api.mastercard.com/ping
    pkcs12_path: /etc/myapp/mastercard/current/key.p12
    pkcs12_password: "{{ keystore_password }}"
    expected_fingerprint: "{{ new_credential.fingerprint }}"

- name: Sign a request with the OAuth 1.0a key, do not fail the play on error
  mcdev.credentials.mc_verify:
    kind: oauth1
    url: https://sandbox.api.mastercard.com/ping
    consumer_key: "{{ consumer_key }}"
    private_key_path: /etc/myapp/mastercard/current/key.pem
    fail_on_error: false
  register: probe

- name: Exchange the OAuth 2.0 key for a DPoP-bound token and call a resource
  mcdev.credentials.mc_verify:
    kind: oauth2
    token_url: https://sandbox.api.mastercard.com/oauth/token
    client_id: "{{ client_id }}"
    kid: "{{ kid }}"
    scopes: [service:scope1]
    private_key_path: /etc/myapp/mastercard/current/key.pem
    url: https://sandbox.api.mastercard.com/ping

- name: Prove the newly deployed OAuth 1.0a key works and record it in its meta.json (replaces mc_deploy state=verified)
  mcdev.credentials.mc_verify:
    kind: oauth1
    url: https://sandbox.api.mastercard.com/ping
    consumer_key: "{{ new.consumer_key }}"
    pkcs12_path: /etc/myapp/mastercard/payments-signing/current/key.p12
    pkcs12_password: "{{ vault_keystore_password }}"
    expected_fingerprint: "{{ new.fingerprint }}"
    record:
      path: /etc/myapp/mastercard
      name: payments-signing
      credential_id: "{{ new.id }}"
  register: verified
"""

RETURN = r"""
success:
  description: Whether the credential worked.
  returned: always
  type: bool
  sample: true
cause:
  description:
    - V(ok) on success; otherwise why it failed.
    - V(expired_certificate), V(not_yet_valid), V(key_mismatch), V(fingerprint_mismatch) are found locally
      and nothing is sent.
    - V(connection_refused), V(name_resolution), V(timeout), V(connection_error), V(server_certificate_untrusted).
    - V(handshake_refused) (the server refused the client certificate in TLS),
      V(client_certificate_rejected) (HTTP 422 INVALID_CLIENT_CERT), V(unauthorized) (401), V(forbidden) (403),
      V(token_rejected) (OAuth 2.0 token endpoint error), V(http_error), V(protocol_error), V(invalid_input).
  returned: always
  type: str
  sample: ok
msg:
  description: One sentence saying what happened.
  returned: always
  type: str
kind:
  description: The probe kind.
  returned: always
  type: str
url:
  description: The probe URL called (V(null) for an OAuth 2.0 token-only check).
  returned: always
  type: str
status:
  description: HTTP status of the probe (for V(oauth2) without O(url), of the token endpoint).
  returned: when an answer was received
  type: int
  sample: 200
latency_ms:
  description: Wall time of the probe in milliseconds, connection and TLS handshake included.
  returned: when an answer was received
  type: int
  sample: 23
reason_code:
  description: The server's reason code (Mastercard C(ReasonCode) or OAuth C(error)).
  returned: on an HTTP failure that carries one
  type: str
  sample: AUTHENTICATION_FAILED
correlation_id:
  description: The server's correlation id, when it sent one.
  returned: always
  type: str
fingerprint:
  description: SHA-256 fingerprint (lowercase hex) of the certificate used, if a certificate was available.
  returned: always
  type: str
public_key_fingerprint:
  description: SHA-256 fingerprint (lowercase hex) of the public key of the key pair used.
  returned: when the key could be read
  type: str
not_after:
  description: Expiry of the certificate used (ISO 8601 UTC).
  returned: always
  type: str
days_left:
  description: Whole days until RV(not_after).
  returned: always
  type: int
kid:
  description: The OAuth 2.0 key ID used.
  returned: always
  type: str
client_id:
  description: The OAuth 2.0 client ID used.
  returned: always
  type: str
consumer_key:
  description: The OAuth 1.0a consumer key used (an identifier, not a secret).
  returned: always
  type: str
response:
  description: The probe's JSON answer on success (keys containing C(token) removed).
  returned: always
  type: dict
  sample: {"fingerprint": "9f86d08...", "credentialId": "cred-12"}
oauth2:
  description: Facts about the token exchange (never the token).
  returned: for O(kind=oauth2) once the token endpoint was reached
  type: dict
  contains:
    token_status:
      description: HTTP status of the token endpoint's final answer.
      type: int
    token_latency_ms:
      description: Time of the token exchange, nonce retry included.
      type: int
    nonce_retries:
      description: How many DPoP nonce challenges were answered.
      type: int
    scopes_granted:
      description: Scopes the token carries.
      type: list
      elements: str
recorded:
  description: What O(record) recorded in the version's C(meta.json) (or would record, in check mode).
  returned: when O(record) is given and the probe succeeded
  type: dict
  contains:
    changed:
      description: Whether C(meta.json) was (or would be) rewritten; V(false) when this fingerprint was already recorded.
      type: bool
    credential_id:
      description: The version the verification was recorded for.
      type: str
    verified_fingerprint:
      description: The fingerprint recorded as verified.
      type: str
    verified_at:
      description: When the verification was recorded (ISO 8601 UTC); kept from the earlier run when nothing changed.
      type: str
    version_path:
      description: The version folder whose C(meta.json) holds the record.
      type: str
  sample: {"changed": true, "credential_id": "cred-12", "verified_fingerprint": "9f86d08...",
           "verified_at": "2026-11-22T06:30:00Z", "version_path": "/etc/myapp/mastercard/payments-signing/versions/cred-12"}
host_facts:
  description:
    - What the rotation planner needs to know about this host after the record, in the same shape as
      M(mcdev.credentials.mc_deploy)'s RV(mcdev.credentials.mc_deploy#module:host_facts). Non-secret.
    - In check mode it shows the predicted record.
  returned: when O(record) is given and the probe succeeded
  type: dict
  contains:
    reachable:
      description: Always V(true) (the host answered).
      type: bool
    current_id:
      description: The version C(current) points at.
      type: str
    current_fingerprint:
      description: The fingerprint deployed in that version.
      type: str
    verified_fingerprint:
      description: The fingerprint last recorded as verified in that version.
      type: str
    verified_at:
      description: When it was verified (ISO 8601 UTC).
      type: str
    deployed_at:
      description: When that version was deployed (ISO 8601 UTC).
      type: str
    versions:
      description: Every version folder, with C(credential_id), C(fingerprint) and C(verified_at).
      type: list
      elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

# verify.py imports only what every probe needs; each probe kind imports its own libraries when it runs.
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, fail_from, fail_missing_library, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import verify as _verify
from ansible_collections.mcdev.credentials.plugins.module_utils.verify_options import (
    PROBE_REQUIRED_IF,
    probe_argument_spec,
    timeout_problem,
)


def _record(module, result):
    """Record the successful verification as mc_deploy state=verified does (deploy.record_verification)."""
    # Imported here: a verification without record never needs the deploy code.
    from ansible_collections.mcdev.credentials.plugins.module_utils import deploy as _deploy

    rec = module.params["record"]
    where = os.path.join(rec["path"], rec["name"])
    if not result["fingerprint"]:
        module.fail_json(**dict(result, msg="The credential works, but record needs the certificate to know which "
                                            "fingerprint was verified: set certificate_path, or use a pkcs12_path "
                                            "that contains the certificate"))
    try:
        done = _deploy.record_verification(rec["path"], rec["name"], rec["credential_id"], result["fingerprint"],
                                           check_mode=module.check_mode, owner=rec["owner"], group=rec["group"])
    except HANDLED as exc:
        fail_from(module, exc, **dict(result, msg="The credential works, but recording the verification in %s failed: "
                                                  "%s" % (where, exc)))
    meta = done["meta"]
    result["changed"] = done["changed"]
    result["recorded"] = dict(done["recorded"], version_path=os.path.join(where, "versions", rec["credential_id"]))
    result["host_facts"] = done["host_facts"]
    result["diff"] = {
        "before": dict(done["before"], credential_id=rec["credential_id"]),
        "after": {"credential_id": rec["credential_id"], "verified_fingerprint": meta.get("verified_fingerprint"),
                  "verified_at": meta.get("verified_at")},
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            probe_argument_spec(),
            pkcs12_path=dict(type="path"),
            pkcs12_password=dict(type="str", no_log=True),
            private_key_path=dict(type="path", no_log=False),
            private_key_password=dict(type="str", no_log=True),
            certificate_path=dict(type="path"),
            fail_on_error=dict(type="bool", default=True),
            record=dict(type="dict", options=dict(
                path=dict(type="path", required=True),
                name=dict(type="str", required=True),
                credential_id=dict(type="str", required=True),
                owner=dict(type="str"),
                group=dict(type="str"),
            )),
        ),
        mutually_exclusive=[("pkcs12_path", "private_key_path")],
        required_one_of=[("pkcs12_path", "private_key_path")],
        required_if=PROBE_REQUIRED_IF,
        supports_check_mode=True,
    )
    with unforeseen_errors(module, ("pkcs12_path", "private_key_path", "certificate_path", "ca_path")):
        params = module.params
        missing = _verify.missing_libraries(params["kind"])
        if missing:
            name, error = missing[0]
            fail_missing_library(module, name, error)
        if timeout_problem(params["timeout"]):
            module.fail_json(msg=timeout_problem(params["timeout"]))
        if params["record"]:
            # A bad record target fails before anything is sent.
            from ansible_collections.mcdev.credentials.plugins.module_utils import deploy as _deploy

            rec = params["record"]
            try:
                _deploy.check_record_target(rec["path"], rec["name"], rec["credential_id"])
            except _deploy.DeployError as exc:
                fail_from(module, exc, msg="record: %s" % exc)

        result = _verify.run_probe(params, tmpdir=module.tmpdir)
        result["changed"] = False
        if not result["success"] and (params["fail_on_error"] or result["cause"] == "invalid_input"):
            module.fail_json(**result)
        if result["success"] and params["record"]:
            _record(module, result)
        module.exit_json(**result)


if __name__ == "__main__":
    main()
