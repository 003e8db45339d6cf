#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_deploy
short_description: Deploy a Mastercard credential bundle to a host as a version and flip C(current) atomically
version_added: 0.1.0
description:
  - Writes the bundle of one credential (PKCS#12 keystore and/or PEM private key, certificate, non-secret
    C(meta.json)) into C(<path>/<name>/versions/<credential_id>/) and points the C(<path>/<name>/current)
    symlink at it in one rename.
  - The bundle is read on the controller (action plugin) from O(private_key_src) and O(certificate_src) or
    O(certificate); the private key never needs to exist on the host outside the version folder.
  - Nothing under O(path) is followed if it is a symlink; keys are written with mode C(0600) through a
    temporary file, fsync and rename.
  - O(state=rollback) points C(current) back at the version recorded as previous (or O(credential_id)),
    after checking that it is complete and not expired.
  - O(state=verified) records in the current version's C(meta.json) that the credential was verified on
    this host (C(verified_at), C(verified_fingerprint)); run it after M(mcdev.credentials.mc_verify) succeeded.
    M(mcdev.credentials.mc_verify) can record this itself with its O(mcdev.credentials.mc_verify#module:record)
    option, which saves this task; both use the same code.
  - O(state=query) only reports what is deployed; it changes nothing.
  - With O(reload_command) and O(verify), the same task also reloads the application, proves the new version
    works from this host and records the proof, or puts the host back on the previous version when either
    fails. That is the whole host side of a rotation in one module process (the C(rotation) role uses it).
    Without them, reload with M(ansible.builtin.command) and verify with M(mcdev.credentials.mc_verify).
author:
  - mcdev.credentials maintainers (@mcdev)
options:
  path:
    description: Absolute base folder on the host. Created if missing.
    type: path
    required: true
  name:
    description: Folder name of this credential under O(path) (one folder per credential the application uses).
    type: str
    required: true
  credential_id:
    description:
      - The version to deploy (the Developers API credential id).
      - With O(state=rollback), the version to go back to; default is the version the current one replaced.
    type: str
  state:
    description: What to do.
    type: str
    choices: [present, rollback, verified, query]
    default: present
  credential:
    description:
      - The credential record (as returned by the API modules). Only non-secret fields are kept in
        C(meta.json) (id, alias, type, kind, environment, fingerprint, public key fingerprint, serial,
        subject, expiry, consumer key, client id, kid, project id, rotation id).
    type: dict
    default: {}
  private_key_src:
    description:
      - Path B(on the controller) of the PEM private key (the rotation key store).
      - Without it (and with O(state=present)) the version must already be complete on the host.
    type: path
  private_key_passphrase:
    description: Passphrase of O(private_key_src), if it is encrypted.
    type: str
  certificate_src:
    description: Path B(on the controller) of the PEM certificate. Mutually exclusive with O(certificate).
    type: path
  certificate:
    description: PEM certificate content. Mutually exclusive with O(certificate_src).
    type: str
  keystore_password:
    description:
      - Password of the PKCS#12 keystore written as C(key.p12). Keep it the same across rotations so the
        application configuration does not change. Required when O(key_formats) contains C(p12).
    type: str
  key_formats:
    description: Which private key files to write.
    type: list
    elements: str
    choices: [p12, pem]
    default: [p12]
  keep:
    description: How many version folders to keep (the current and the previous one are never removed).
    type: int
    default: 3
  owner:
    description: Owner of the files written (name or uid). Default is the user the module runs as.
    type: str
  group:
    description: Group of the files written (name or gid).
    type: str
  allow_expired_rollback:
    description: Allow O(state=rollback) to a version whose credential has expired.
    type: bool
    default: false
  rollback_from:
    description:
      - With O(state=rollback), roll back only when C(current) points at this version (so a deploy that
        failed before the flip leaves the host as it is).
    type: str
  verified_fingerprint:
    description: With O(state=verified), the fingerprint the verification proved (must match C(meta.json)).
    type: str
  reload_command:
    description:
      - With O(state=present), the command that makes the application load the new version, run on the host
        when C(current) moved or the version it points at was never verified on this host.
      - Split into arguments the way M(ansible.builtin.command) splits C(cmd), with no shell. A non-zero exit
        fails the task, after O(rollback_on_failure).
    type: str
  verify:
    description:
      - With O(state=present), prove the deployed version from this host after the reload, as
        M(mcdev.credentials.mc_verify) does, and record the verified fingerprint in the version's C(meta.json)
        as its O(mcdev.credentials.mc_verify#module:record) option does.
      - The probe uses the files just written (C(key.p12) with O(keystore_password) when O(key_formats)
        contains C(p12), else C(key.pem) and C(cert.pem)). A failed probe fails the task, after
        O(rollback_on_failure).
      - The options mean what the options of the same name of M(mcdev.credentials.mc_verify) mean.
    type: dict
    suboptions:
      kind:
        description: The credential kind, which decides the probe.
        type: str
        required: true
        choices: [mtls, oauth1, oauth2]
      url:
        description: HTTPS address to call. Required for V(mtls) and V(oauth1).
        type: str
      method:
        description: HTTP method of the probe call.
        type: str
        choices: [GET, POST, HEAD]
        default: GET
      expected_fingerprint:
        description: SHA-256 fingerprint the deployed certificate must have. Default is the one in C(meta.json).
        type: str
      consumer_key:
        description: OAuth 1.0a consumer key. Required for V(oauth1).
        type: str
      client_id:
        description: OAuth 2.0 client id. Required for V(oauth2).
        type: str
      kid:
        description: OAuth 2.0 key id. Required for V(oauth2).
        type: str
      token_url:
        description: OAuth 2.0 token endpoint. Required for V(oauth2).
        type: str
      issuer:
        description:
          - OAuth 2.0 authorization server issuer (the audience of the client assertion).
          - Defaults to the scheme and host of O(verify.token_url); see O(mcdev.credentials.mc_verify#module:issuer).
        type: str
      scopes:
        description: OAuth 2.0 scopes to ask for.
        type: list
        elements: str
        default: []
      ca_path:
        description: CA bundle that signs the probe server's certificate.
        type: path
      validate_certs:
        description: Check the probe server's certificate.
        type: bool
        default: true
      timeout:
        description: Seconds to wait for each answer.
        type: int
        default: 10
  rollback_on_failure:
    description:
      - When O(reload_command) or O(verify) fails, point C(current) back at the previous version and run
        O(reload_command) again before failing, so the application keeps a credential that worked.
    type: bool
    default: true
  _bundle:
    description:
      - Internal option, set by the action plugin on the controller; do not set it in a task.
      - The files of the bundle built from O(private_key_src) and O(certificate_src) or O(certificate), as a
        dictionary of file name to base64 content.
    type: dict
extends_documentation_fragment:
  - mcdev.credentials.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the version C(current) points at, never key bytes.
  action:
    description: Has a corresponding action plugin that reads the bundle on the controller.
    support: full
notes:
  - O(reload_command) and O(verify) do nothing in check mode; RV(reloaded) says whether the reload would run.
  - The private key is read on the controller and sent to the host inside the module arguments, which are
    C(no_log); use pipelining or a secure transport as you would for any secret.
seealso:
  - module: mcdev.credentials.mc_verify
"""

EXAMPLES = r"""
- name: Deploy the new OAuth key to the host
  mcdev.credentials.mc_deploy:
    path: /etc/myapp/mastercard
    name: payments-signing
    credential_id: "{{ new.id }}"
    credential: "{{ new }}"
    private_key_src: /var/lib/mcdev/keystore/payments/{{ new.id }}/key.pem
    certificate: "{{ new.certificate }}"
    keystore_password: "{{ vault_keystore_password }}"
  register: deployed

- name: Deploy, reload, prove from this host and record it; on failure the host goes back to its previous version
  mcdev.credentials.mc_deploy:
    path: /etc/myapp/mastercard
    name: payments-signing
    credential_id: "{{ new.id }}"
    credential: "{{ new }}"
    private_key_src: /var/lib/mcdev/keystore/payments/{{ new.id }}/key.pem
    certificate: "{{ new.certificate }}"
    keystore_password: "{{ vault_keystore_password }}"
    reload_command: systemctl reload myapp
    verify:
      kind: oauth1
      url: https://sandbox.api.mastercard.com/example/resource
      consumer_key: "{{ new.consumerKey }}"

- name: Put the host back on its previous version
  mcdev.credentials.mc_deploy:
    path: /etc/myapp/mastercard
    name: payments-signing
    state: rollback
    credential_id: "{{ deployed.previous }}"
"""

RETURN = r"""
previous:
  description: The version C(current) pointed at before this task (null on a first deploy).
  returned: always
  type: str
current:
  description: The version C(current) points at after this task.
  returned: always
  type: str
flipped:
  description: Whether C(current) was moved.
  returned: always
  type: bool
written:
  description: Bundle files written (names only).
  returned: state=present
  type: list
  elements: str
pruned:
  description: Old version folders removed.
  returned: state=present
  type: list
  elements: str
path:
  description: The C(<path>/<name>/current) symlink.
  returned: always
  type: str
version_path:
  description: The folder of the version C(current) points at.
  returned: always
  type: str
meta:
  description: The non-secret C(meta.json) of that version.
  returned: always
  type: dict
versions:
  description: Version folders on the host.
  returned: always
  type: list
  elements: str
reload_due:
  description:
    - Whether the application should reload, because C(current) moved or the version it points at was never
      verified on this host. O(reload_command) runs only then; use it as the condition of a reload you run
      yourself.
  returned: state=present
  type: bool
reloaded:
  description: Whether O(reload_command) ran (in check mode, whether it would run).
  returned: state=present
  type: bool
verification:
  description:
    - The probe's result, as M(mcdev.credentials.mc_verify) returns it (without the response body), when
      O(verify) ran.
  returned: when O(verify) ran, also on failure
  type: dict
recorded:
  description: The verification recorded in C(meta.json) (C(changed), C(credential_id), C(verified_fingerprint), C(verified_at)).
  returned: when O(verify) succeeded
  type: dict
rolled_back_to:
  description: The version C(current) was put back on after a failed reload or verification.
  returned: on failure, when it rolled back
  type: str
host_facts:
  description:
    - What the rotation planner needs to know about this host (current id, fingerprint, kind and expiry, the
      last verification, the versions kept). Non-secret.
  returned: always
  type: dict
"""

import base64
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, fail_from, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils.deploy import (
    DeployError,
    Layout,
    check_component,
    record_verification,
    resolve_ids,
)
from ansible_collections.mcdev.credentials.plugins.module_utils.rollout import (
    Rollout,
    RolloutError,
    probe_material,
    reload_due,
)
from ansible_collections.mcdev.credentials.plugins.module_utils.verify_options import (
    PROBE_REQUIRED_IF,
    probe_argument_spec,
    timeout_problem,
)

# record key (API camelCase or the collection's snake_case) -> meta.json key. Nothing secret.
META_FIELDS = {
    "id": "credential_id",
    "alias": "alias",
    "type": "type",
    "kind": "kind",
    "environment": "environment",
    "oauthVersion": "oauth_version",
    "oauth_version": "oauth_version",
    "fingerprint": "fingerprint",
    "publicKeyFingerprint": "public_key_fingerprint",
    "public_key_fingerprint": "public_key_fingerprint",
    "serialNumber": "serial",
    "serial": "serial",
    "subjectDn": "subject",
    "subject": "subject",
    "expiryDate": "expires",
    "expires": "expires",
    "consumerKey": "consumer_key",
    "consumer_key": "consumer_key",
    "clientId": "client_id",
    "client_id": "client_id",
    "kid": "kid",
    "project_id": "project_id",
    "projectId": "project_id",
    "rotation_id": "rotation_id",
}


def _meta_from_record(record):
    meta = {}
    for src, dst in META_FIELDS.items():
        value = record.get(src)
        if value is not None and dst not in meta:
            meta[dst] = value
    if meta.get("fingerprint"):
        meta["fingerprint"] = str(meta["fingerprint"]).lower()
    return meta


def _resolve_ids(module):
    try:
        return resolve_ids(module.params["owner"], module.params["group"])
    except DeployError as exc:
        fail_from(module, exc)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            name=dict(type="str", required=True),
            credential_id=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "rollback", "verified", "query"]),
            credential=dict(type="dict", default={}),
            private_key_src=dict(type="path"),
            private_key_passphrase=dict(type="str", no_log=True),
            certificate_src=dict(type="path"),
            certificate=dict(type="str"),
            keystore_password=dict(type="str", no_log=True),
            key_formats=dict(type="list", elements="str", choices=["p12", "pem"], default=["p12"]),
            keep=dict(type="int", default=3),
            owner=dict(type="str"),
            group=dict(type="str"),
            allow_expired_rollback=dict(type="bool", default=False),
            rollback_from=dict(type="str"),
            verified_fingerprint=dict(type="str"),
            reload_command=dict(type="str"),
            verify=dict(type="dict", options=probe_argument_spec(), required_if=PROBE_REQUIRED_IF),
            rollback_on_failure=dict(type="bool", default=True),
            # filled by the action plugin on the controller: {file name: base64 bytes}
            _bundle=dict(type="dict", no_log=True),
        ),
        mutually_exclusive=[["certificate", "certificate_src"]],
        required_if=[["state", "present", ["credential_id"]], ["state", "verified", ["credential_id"]]],
        supports_check_mode=True,
    )
    with unforeseen_errors(module, ("path", "private_key_src", "certificate_src")):
        p = module.params
        if p["keep"] < 2:
            module.fail_json(msg="keep must be at least 2 (the current and the previous version), got %d" % p["keep"])
        state = p["state"]
        if state != "present" and (p["reload_command"] or p["verify"]):
            module.fail_json(msg="reload_command and verify go with state=present (the deploy they follow), not state=%s"
                             % state)
        if p["verify"] and timeout_problem(p["verify"]["timeout"], "verify.timeout"):
            module.fail_json(msg=timeout_problem(p["verify"]["timeout"], "verify.timeout"))
        try:
            if state == "present":
                uid, gid = _resolve_ids(module)
                bundle = p["_bundle"]
                if bundle is None and (p["private_key_src"] or p["certificate_src"]):
                    module.fail_json(msg="mc_deploy must run through its action plugin to read private_key_src and "
                                         "certificate_src on the controller (call it as mcdev.credentials.mc_deploy)")
                files = {}
                if bundle is None:
                    # redeploy by id only: everything must already be on the host
                    for fmt in p["key_formats"]:
                        files["key.%s" % fmt] = None
                    files["cert.pem"] = None
                else:
                    files = dict((k, base64.b64decode(v)) for k, v in bundle.items())
                meta = _meta_from_record(p["credential"])
                meta["credential_id"] = p["credential_id"]
                # A bad id must fail before anything is created on the host.
                check_component(p["credential_id"], "credential_id")
                with Layout(p["path"], p["name"], create=not module.check_mode) as layout:
                    if layout.root_fd is None or layout.versions_fd is None:
                        # check mode on a fresh host: nothing exists yet
                        if any(v is None for v in files.values()):
                            raise DeployError("versions/%s is not deployed on this host and no content was given"
                                              % p["credential_id"])
                        result = {"changed": True, "previous": None, "current": p["credential_id"], "flipped": True,
                                  "written": sorted(files), "pruned": [], "meta": meta}
                        versions = []
                        host_facts = {"reachable": True, "current_id": None, "versions": []}
                    else:
                        result = layout.deploy(p["credential_id"], files, meta, check_mode=module.check_mode,
                                               uid=uid, gid=gid, keep=p["keep"])
                        versions = layout.versions()
                        host_facts = layout.host_facts()
            elif state == "rollback":
                with Layout(p["path"], p["name"], create=False) as layout:
                    if layout.root_fd is None:
                        module.fail_json(msg="nothing is deployed at %s" % os.path.join(p["path"], p["name"]))
                    result = layout.rollback(p["credential_id"], check_mode=module.check_mode,
                                             allow_expired=p["allow_expired_rollback"], only_from=p["rollback_from"])
                    versions = layout.versions()
                    host_facts = layout.host_facts()
            elif state == "verified":
                # the same recorder as mc_verify's record option (deploy.record_verification)
                recorded = record_verification(p["path"], p["name"], p["credential_id"], p["verified_fingerprint"],
                                               check_mode=module.check_mode, owner=p["owner"], group=p["group"])
                cur = recorded["current"]
                result = {"changed": recorded["changed"], "meta": recorded["meta"], "previous": cur, "current": cur,
                          "flipped": False}
                versions = recorded["versions"]
                host_facts = recorded["host_facts"]
            else:
                with Layout(p["path"], p["name"], create=False) as layout:
                    if layout.root_fd is not None:
                        facts = layout.facts()
                        host_facts = layout.host_facts()
                    else:
                        facts = {"current": None, "meta": None, "versions": []}
                        host_facts = {"reachable": True, "current_id": None, "versions": []}
                cur = facts["current"]
                result = {"changed": False, "previous": cur, "current": cur, "flipped": False, "meta": facts["meta"]}
                versions = facts["versions"]
        except HANDLED as exc:
            fail_from(module, exc, msg="%s: %s" % (os.path.join(p["path"], p["name"]), exc))

        root = os.path.join(p["path"], p["name"])
        result["path"] = os.path.join(root, "current")
        result["version_path"] = os.path.join(root, "versions", result["current"]) if result.get("current") else None
        result["versions"] = versions
        result["host_facts"] = host_facts
        result.setdefault("meta", None)
        result["diff"] = {"before": {"current": result["previous"]}, "after": {"current": result["current"]}}
        if state == "present":
            result["reload_due"] = reload_due(result)
            if p["reload_command"] or p["verify"]:
                _reload_and_verify(module, result)
        module.exit_json(**result)


def _reload_and_verify(module, result):
    """The rest of a host's rotation step in this process (module_utils/rollout.py)."""
    p = module.params
    rollout = Rollout(p["path"], p["name"], p["credential_id"], module.run_command, tmpdir=module.tmpdir,
                      owner=p["owner"], group=p["group"])
    material = probe_material(result["version_path"] or "", p["key_formats"], p["keystore_password"])
    try:
        done = rollout.run(result, reload_command=p["reload_command"], verify=p["verify"], material=material,
                           rollback_on_failure=p["rollback_on_failure"], check_mode=module.check_mode)
    except RolloutError as failure:
        details = dict(failure.details)
        if details.get("rolled_back_to"):
            result["current"] = details["rolled_back_to"]
            result["diff"]["after"] = {"current": details["rolled_back_to"]}
        result.update(details)  # None values too: the result keeps its shape
        result["changed"] = True
        fail_from(module, failure, **dict(result, msg="%s: %s" % (os.path.join(p["path"], p["name"]), failure.msg)))
    result.update(done)
    if done["reloaded"] or (done["recorded"] or {}).get("changed"):
        result["changed"] = True


if __name__ == "__main__":
    main()
