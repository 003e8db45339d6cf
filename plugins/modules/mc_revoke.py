#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_revoke
short_description: Revoke Mastercard project credentials, with the portal's safety and more
version_added: 0.1.0
description:
  - Revokes mTLS certificates or OAuth 1.0a / OAuth 2.0 keys of one project, environment and kind,
    chosen by id, alias or certificate fingerprint, or by a selector (V(expired), or C(all_but_newest) with a count).
  - Like the portal, it revokes only when O(confirm) is exactly V(REVOKE); anything else fails before any call.
  - Revocation takes effect immediately and cannot be undone, so the module refuses to revoke the last active
    credential of the kind in the environment (unless O(force_last=true)) and a credential whose fingerprint
    is listed in O(in_use_fingerprints) (unless O(ignore_in_use=true)). The API's own revoke guards are
    reported as clear failures.
  - A credential that is already revoked is left alone and reported as unchanged.
  - "API calls per run: one credential list (paged), plus one C(DELETE) per credential to revoke.
    A run with nothing to revoke makes only the list call."
author:
  - mcdev.credentials maintainers (@mcdev)
extends_documentation_fragment:
  - mcdev.credentials.connection
  - mcdev.credentials.portal
  - mcdev.credentials.attributes
  - mcdev.credentials.attributes.idempotent
attributes:
  check_mode:
    support: full
    details: Lists the credentials and applies every guard, then reports what would be revoked without calling C(DELETE).
  diff_mode:
    support: full
    details: Shows id, alias, fingerprint, expiry and status (V(ACTIVE) to V(REVOKED)) of each credential.
  idempotent:
    support: full
  action_group:
    description: Use C(group/mcdev.credentials.api) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - mcdev.credentials.api
options:
  project_id:
    description: The Mastercard Developers project.
    type: str
    required: true
  environment:
    description: The project environment.
    type: str
    required: true
    choices: [sandbox, production]
  kind:
    description:
      - The credential kind. V(mtls) is a client certificate, V(oauth1) and V(oauth2) are OAuth signing keys.
      - Guards count credentials of this kind only.
    type: str
    required: true
    choices: [mtls, oauth1, oauth2]
  credential_id:
    description: Id(s) of the credential(s) to revoke.
    type: list
    elements: str
  alias:
    description: Alias(es) of the credential(s) to revoke.
    type: list
    elements: str
  fingerprint:
    description:
      - SHA-256 certificate fingerprint(s) of the credential(s) to revoke (hex; colons and case are ignored).
    type: list
    elements: str
  selector:
    description:
      - Revoke by rule instead of by name.
      - V(expired) revokes every credential of the kind that has expired and is not revoked yet
        (so that its expiry notices stop).
      - "C(all_but_newest: N) (a dictionary) keeps the N newest active credentials and revokes every other one that
        is not revoked yet. C(all_but_newest: 0) means all of them, which the last-active guard refuses unless
        O(force_last=true)."
      - "C(expired: true) is the same as V(expired)."
      - Combined with O(credential_id), O(alias) and O(fingerprint), the union is revoked.
    type: raw
  confirm:
    description:
      - Must be exactly V(REVOKE), as typed in the portal's confirmation box. Any other value fails the task
        before the API is called, in check mode too.
    type: str
  in_use_fingerprints:
    description:
      - Certificate fingerprints that are still in use, for example gathered from the hosts' C(meta.json) or
        with M(mcdev.credentials.mc_credential_info). A credential whose fingerprint is listed is not revoked.
    type: list
    elements: str
    default: []
  ignore_in_use:
    description: Revoke even a credential whose fingerprint is in O(in_use_fingerprints).
    type: bool
    default: false
  force_last:
    description:
      - Allow revoking the last active credential of the kind in the environment. The application stops
        working with Mastercard at once if it has no other credential.
      - The API may have its own guard (C(REVOKE_LAST_ACTIVE_CREDENTIAL)); this option cannot override it.
    type: bool
    default: false
  revoked_in_portal:
    description:
      - >-
        With O(backend=portal), the person confirms that the credentials selected were revoked in the portal, so
        this run records them as revoked. Without it, the first run writes a revoke work order per credential and
        ends with RV(status=AWAITING_REVOKE); dropping C({"revoked": true}) into the work order's inbox file
        confirms one credential the same way.
      - The guards (in-use fingerprints, the last active credential) apply before any work order is written.
    type: bool
    default: false
seealso:
  - module: mcdev.credentials.mc_credential_info
  - module: mcdev.credentials.mc_verify
"""

EXAMPLES = r"""
- name: Revoke the old certificate once the new one is verified everywhere
  mcdev.credentials.mc_revoke:
    project_id: "{{ project_id }}"
    environment: sandbox
    kind: mtls
    fingerprint: "{{ old_fingerprint }}"
    in_use_fingerprints: "{{ groups['app'] | map('extract', hostvars, 'mc_fingerprint') | list }}"
    confirm: REVOKE
  delegate_to: localhost

- name: Keep only the newest OAuth 2.0 key
  mcdev.credentials.mc_revoke:
    project_id: "{{ project_id }}"
    environment: production
    kind: oauth2
    selector:
      all_but_newest: 1
    confirm: REVOKE
  check_mode: true
  diff: true

- name: Stop the expiry notices of keys that already expired
  mcdev.credentials.mc_revoke:
    project_id: "{{ project_id }}"
    environment: sandbox
    kind: oauth1
    selector: expired
    confirm: REVOKE

- name: Through the portal - a revoke work order first, then the person's confirmation closes it
  mcdev.credentials.mc_revoke:
    backend: portal
    portal_dir: /var/lib/mcdev/portal
    project_id: "{{ project_id }}"
    environment: production
    kind: mtls
    alias: [payments-2026]
    confirm: REVOKE
    revoked_in_portal: "{{ portal_revoked | default(false) }}"
"""

RETURN = r"""
status:
  description: With O(backend=portal), V(AWAITING_REVOKE) while revocations wait for the person.
  returned: when a revocation waits for a person
  type: str
  sample: AWAITING_REVOKE
work_orders:
  description: The open revoke work orders (C(json), C(page), C(inbox), C(credential_id)).
  returned: when a revocation waits for a person
  type: list
  elements: dict
revoked:
  description:
    - The credentials revoked by this run (in check mode, that would be revoked), as the API reports them after
      the revocation. Holds no secret.
  returned: always
  type: list
  elements: dict
  sample:
    - id: cred-42
      alias: payments-1714000000
      kind: mtls
      environment: sandbox
      status: REVOKED
      fingerprint: 3f1c...
      expires: "2026-05-01T00:00:00Z"
already_revoked:
  description: Ids of matched credentials that were already revoked (left unchanged).
  returned: always
  type: list
  elements: str
remaining_active:
  description: Ids of the credentials of this kind that are still active after the run (predicted in check mode).
  returned: always
  type: list
  elements: str
contract_overrides:
  description:
    - The Developers API contract entries that the file in O(contract_path) changed, as section.entry (with the
      field for an endpoint); empty with the collection's own contract.
  returned: success
  type: list
  elements: str
  sample: [endpoints.list_credentials.path, create_fields.alias]
api_calls:
  description: Number of HTTP requests sent to the Developers API (retries included).
  returned: always
  type: int
  sample: 2
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils import _time
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, fail_from, fail_missing_library, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import devapi, portal
from ansible_collections.mcdev.credentials.plugins.module_utils import revoke as _revoke

CONFIRM_WORD = "REVOKE"


def _facts(client, **extra):
    """What every failure of the module returns besides its message."""
    extra.setdefault("revoked", [])
    extra["api_calls"] = getattr(client, "call_count", 0) if client else 0
    return extra


def _fail(module, client, msg, **extra):
    module.fail_json(msg=msg, **_facts(client, **extra))


def main():
    argument_spec = devapi.connection_argument_spec()
    argument_spec.update(
        project_id=dict(type="str", required=True),
        environment=dict(type="str", required=True, choices=["sandbox", "production"]),
        kind=dict(type="str", required=True, choices=["mtls", "oauth1", "oauth2"]),
        credential_id=dict(type="list", elements="str"),
        alias=dict(type="list", elements="str"),
        fingerprint=dict(type="list", elements="str"),
        selector=dict(type="raw"),
        confirm=dict(type="str"),
        in_use_fingerprints=dict(type="list", elements="str", default=[]),
        ignore_in_use=dict(type="bool", default=False),
        force_last=dict(type="bool", default=False),
        revoked_in_portal=dict(type="bool", default=False),
        **portal.portal_argument_spec()
    )
    constraints = devapi.connection_constraints()
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[("credential_id", "alias", "fingerprint", "selector")],
        supports_check_mode=True,
        **constraints
    )
    with unforeseen_errors(module, ("signing_key_path", "ca_path")):
        params = module.params

        # The portal's confirmation, checked before anything else (check mode too).
        if params["confirm"] != CONFIRM_WORD:
            module.fail_json(
                msg="Revocation is immediate and cannot be undone: set confirm to REVOKE (exactly, upper case) "
                    "to revoke; got %s. Nothing was called." % ("nothing" if params["confirm"] is None else "another value"),
                revoked=[], api_calls=0)
        try:
            selector = _revoke.parse_selector(params["selector"])
        except _revoke.SelectionError as exc:
            fail_from(module, exc, **_facts(None))

        missing = devapi.missing_requirement()
        if missing:
            fail_missing_library(module, missing[0], missing[1])

        project_id = params["project_id"]
        environment = params["environment"]
        kind = params["kind"]
        client = None
        try:
            if params["backend"] == "portal":
                client = portal.PortalDesk(params["portal_dir"], project_id, kind,
                                           revoked_confirmed=params["revoked_in_portal"])
            else:
                client = devapi.client_from_params(params, module.warn)
            credentials = client.list_credentials(project_id, environment=environment, kind=kind)
            now = _time.now()
            targets, already, missing_refs = _revoke.select(
                credentials, ids=params["credential_id"], aliases=params["alias"],
                fingerprints=params["fingerprint"], selector=selector, now=now)
            if missing_refs:
                # An id may exist outside this environment/kind: say so, rather than "not found".
                details = []
                for option, value in missing_refs:
                    where = ""
                    if option == "credential_id":
                        try:
                            other = client.get_credential(project_id, value)
                            where = " (it is a %s %s credential, not %s %s)" % (
                                (other.environment or "?").lower(), other.kind or other.type, environment, kind)
                        except devapi.DevApiError as exc:
                            if exc.status not in (400, 404):
                                raise
                    details.append("%s %s%s" % (option, value, where))
                _fail(module, client,
                      "No %s credential of project %s in %s matches %s; nothing was revoked"
                      % (kind, project_id, environment, ", ".join(details)))
            scope = "project %s %s" % (project_id, environment)
            try:
                _revoke.check_guards(credentials, targets, params["in_use_fingerprints"], params["force_last"],
                                     params["ignore_in_use"], now=now, scope=scope)
            except _revoke.RevokeRefused as exc:
                fail_from(module, exc, **_facts(client))

            diff = _revoke.status_diff(targets)
            revoked, waiting = [], []
            if module.check_mode:
                for cred in targets:
                    predicted = cred.to_dict()
                    predicted["status"] = _revoke.REVOKED
                    revoked.append(predicted)
            else:
                for cred in targets:
                    try:
                        after = client.revoke_credential(project_id, cred.id)
                    except portal.AwaitingPerson as person:
                        waiting.append(person)
                        continue
                    except devapi.DevApiError as exc:
                        done = " Already revoked in this run: %s." % ", ".join(r["id"] for r in revoked) if revoked else ""
                        fail_from(module, exc, **_facts(client, revoked=revoked, msg=str(exc) + done))
                    record = after.to_dict()
                    if (record.get("status") or "").upper() != _revoke.REVOKED:
                        _fail(module, client,
                              "The API answered the revocation of %s with status %s instead of REVOKED"
                              % (_revoke.describe(cred), record.get("status")), revoked=revoked)
                    revoked.append(record)
            going = set(str(record["id"]) for record in revoked)
            remaining = [str(c.id) for c in credentials if _revoke.is_active(c, now) and str(c.id) not in going]
            result = dict(
                changed=bool(targets),
                revoked=revoked,
                already_revoked=[str(c.id) for c in already],
                remaining_active=remaining,
                api_calls=client.call_count,
                contract_overrides=list(client.contract.overridden),
            )
            if targets:
                verb = "Would revoke" if module.check_mode else "Revoked"
                result["msg"] = "%s %s" % (verb, ", ".join(_revoke.describe(c) for c in targets))
            else:
                result["msg"] = "Nothing to revoke%s" % (
                    " (already revoked: %s)" % ", ".join(result["already_revoked"]) if already else "")
            if waiting:  # backend=portal: the person revokes, then the next run records it
                result.update(portal.revoke_waiting_result(waiting),
                              changed=bool(revoked) or any(person.written for person in waiting))
                if revoked:
                    result["msg"] = "Revoked %s; %s" % (", ".join(record["id"] for record in revoked), result["msg"])
            if module._diff:
                result["diff"] = diff
            module.exit_json(**result)
        except HANDLED as exc:
            fail_from(module, exc, **_facts(client))
        finally:
            if client is not None:
                client.close()


if __name__ == "__main__":
    main()
