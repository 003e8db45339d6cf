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
  - Reloading the application and verifying the credential are separate steps (see the C(rotation) role).
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
host_facts:
  description:
    - What the rotation planner needs to know about this host (current id and fingerprint, the last
      verification, the versions kept). Non-secret.
  returned: always
  type: dict
"""

import base64
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils.deploy import (
    DeployError,
    Layout,
    check_component,
    record_verification,
    resolve_ids,
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
        module.fail_json(msg=str(exc))


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
            # filled by the action plugin on the controller: {file name: base64 bytes}
            _bundle=dict(type="dict", no_log=True),
        ),
        mutually_exclusive=[["certificate", "certificate_src"]],
        required_if=[["state", "present", ["credential_id"]], ["state", "verified", ["credential_id"]]],
        supports_check_mode=True,
    )
    p = module.params
    if p["keep"] < 2:
        module.fail_json(msg="keep must be at least 2 (the current and the previous version), got %d" % p["keep"])
    state = p["state"]
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
    except DeployError as exc:
        module.fail_json(msg="%s: %s" % (os.path.join(p["path"], p["name"]), exc))
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (os.path.join(p["path"], p["name"]), exc))

    root = os.path.join(p["path"], p["name"])
    result["path"] = os.path.join(root, "current")
    result["version_path"] = os.path.join(root, "versions", result["current"]) if result.get("current") else None
    result["versions"] = versions
    result["host_facts"] = host_facts
    result.setdefault("meta", None)
    result["diff"] = {"before": {"current": result["previous"]}, "after": {"current": result["current"]}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
