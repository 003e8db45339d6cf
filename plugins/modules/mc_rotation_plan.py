#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_rotation_plan
short_description: Plan the next safe step(s) of a Mastercard credential rotation
version_added: 0.1.0
description:
  - The decision half of the C(mcdev.credentials.rotation) role. It reads the facts (the project's
    credentials at Mastercard, the controller's key store and ledger, and what each in-scope host carries)
    and answers with the next safe step(s) (create, deploy, verify, wait for the soak period, revoke, or
    nothing). The role carries the answer out.
  - The decisions themselves live in the collection's C(inventory) module_utils (C(plan_rotation)); this
    module gathers the facts for it, keeps the ledger, the lease lock and the per-host facts cache on the
    controller, and shapes the answer for the role.
  - Runs on the controller. One Developers API call (the credential list) per run, whatever the number of
    hosts; later phases reuse that list.
author:
  - mcdev.credentials maintainers (@mcdev)
extends_documentation_fragment:
  - mcdev.credentials.connection
  - mcdev.credentials.portal
  - mcdev.credentials.portal.issued
  - mcdev.credentials.attributes
options:
  phase:
    description:
      - V(plan) plans from the facts and takes the lock when there is work to do.
      - V(record) stores what the fleet reported (O(host_facts)), plans again, and ends the run. When the plan
        says the old credential(s) may now be revoked and O(revoke=true), it revokes them (with the same guards
        as M(mcdev.credentials.mc_revoke). Never one that a host still uses, never the last active one). It
        then records the outcome and releases the run's lock.
      - V(failed) records a failed step (attempts, backoff), releases the lock and fails with a message
        naming the host (O(host), when a host failed) and the cause.
      - V(release) records the revocations carried out (O(revoked)) and releases the lock.
    type: str
    choices: [plan, record, failed, release]
    default: plan
  project_id:
    description: The Developers API project.
    type: str
    required: true
  kind:
    description: Which credential is rotated.
    type: str
    choices: [mtls, oauth1, oauth2]
    required: true
  environment:
    description: Project environment.
    type: str
    choices: [sandbox, production]
    default: sandbox
  name:
    description: Folder of the credential on the hosts; also the default alias prefix and the ledger's name.
    type: str
    required: true
  alias_prefix:
    description:
      - Names the credential's lineage. New credentials get the alias C(<alias_prefix>-<rotation id>);
        credentials whose alias is the prefix or starts with C(<alias_prefix>-) are managed (and their old
        ones revoked) by the rotation. Default O(name).
    type: str
  hosts:
    description: Every in-scope host (the hosts that use this credential). An unreachable one blocks revocation.
    type: list
    elements: str
    default: []
  host_facts:
    description:
      - What hosts reported this run, a dict of host name to facts, the facts as returned by
        M(mcdev.credentials.mc_deploy) in RV(mcdev.credentials.mc_deploy#module:host_facts). Stored in the
        controller's fleet cache. A host listed with C(reachable=false) (or empty facts) is unreachable.
    type: dict
    default: {}
  refresh_hosts:
    description: Ignore the fleet cache and ask every in-scope host again (RV(gather) lists them all).
    type: bool
    default: false
  revoke:
    description:
      - With O(phase=record), revoke what the plan allows. When false, the plan only lists it in RV(revoke).
      - With O(phase=plan), revoke the orphans the plan names (credentials whose private key exists nowhere),
        with the same guards, before anything is created; they are then listed in RV(revoked), not in
        RV(revoke_orphans). A failed revocation counts as a failed attempt (backoff) and releases the lock.
        Never in check mode.
    type: bool
    default: false
  remote:
    description:
      - The credential list returned by an earlier phase of this run (RV(remote)); skips the API call.
    type: list
    elements: dict
  created:
    description: The credential a create (or adopt) step of this run produced (a record as the API modules return).
    type: dict
  revoked:
    description: Ids of the credentials revoked this run (with O(phase=release)).
    type: list
    elements: str
    default: []
  run_id:
    description: This run's lock owner, as returned by the first O(phase=plan) (RV(run_id)).
    type: str
  state_dir:
    description:
      - Controller folder for the ledger, the fleet cache and the key store (new private keys, mode 0600).
        Must persist between runs to make resuming cheap; see the AWX guide for ephemeral controllers.
    type: path
    required: true
  key_store_password:
    description: Password of the private keys in the key store (the O(mcdev.credentials.mc_oauth_key#module:keystore_password) or
      O(mcdev.credentials.mc_certificate#module:keystore_password) given to the create step).
    type: str
  lead_days:
    description: Rotate this many days before expiry. Default (0) is one third of the credential's lifetime.
    type: float
    default: 0
  soak_hours:
    description: Keep old and new credential active this long after every host verified the new one.
    type: float
    default: 0
  force:
    description: Rotate now, even when nothing is due, and ignore the backoff and the attempt limit.
    type: bool
    default: false
  respect_backoff:
    description:
      - Honour the backoff after a failed attempt. Scheduled runs should (the role turns it on for AWX
        schedules); a person re-running by hand after fixing the cause should not have to wait.
    type: bool
    default: true
  max_attempts:
    description: After this many consecutive failed attempts the rotation is blocked until forced.
    type: int
    default: 5
  backoff_base_minutes:
    description: First retry delay after a failure; it doubles with each further failure.
    type: float
    default: 60
  backoff_max_hours:
    description: Longest retry delay.
    type: float
    default: 24
  lock_ttl_minutes:
    description: How long this run's lock lives (a crashed run's lock expires by itself).
    type: float
    default: 60
  lock_wait_seconds:
    description:
      - With O(phase=plan), while another run holds the rotation lock, wait up to this long for it to let go
        (or, with O(view=slice), to make the new credential), planning again whenever the ledger or the key
        store changes, before ending with state C(LOCKED). V(0) ends at once.
      - For the concurrent jobs of a sliced AWX job template, so that a slice waits for the one that creates
        instead of failing.
    type: float
    default: 0
  view:
    description:
      - V(full) (the default) means O(hosts) are every host of the lineage (the rotation's scope). The run may
        revoke old credentials once every one of them verified the new one, and hosts left out of O(hosts)
        are forgotten from the fleet cache.
      - V(slice) means O(hosts) are one part of the scope (a slice of an AWX job template with job slicing,
        or a C(--limit)). The run creates the new credential when it is due (under the lock), deploys and
        verifies it on its own hosts without holding the lock, and never revokes. It stops at
        C(SLICE_VERIFIED), and keeps the other hosts' facts in the fleet cache. The revocation is left to a
        later run with V(full), such as the last, unsliced node of the workflow. That run finds every
        host's state in the cache and needs no host task.
    type: str
    choices: [full, slice]
    default: full
  state_url:
    description:
      - A PostgreSQL connection URL (C(postgresql://user:password@host:5432/db), or any libpq connection
        string). The ledger, the rotation lock, the fleet cache and the key store of the lineage then live
        in the table C(mcdev_rotation_state), which is created when missing. Every execution node that runs
        the rotation sees the same state, and a job in a fresh container resumes what another node left.
      - O(state_dir) then keeps this node's copy of the private keys, refilled from the database.
      - The keys are stored as the key store keeps them, encrypted with O(key_store_password), which is
        required. With a new credential due, the planner makes its private key and stores it in the database
        before the create task runs, so a container lost after the create leaves no orphan.
      - A lost connection fails the task with C(retryable=true). The transaction in flight is rolled back,
        so nothing is half-written. Needs the Python package psycopg (3.x) on the controller.
      - Also read from the environment variable E(MC_ROTATION_STATE_URL). The URL is never printed with its
        password.
    type: str
  key_type:
    description:
      - With O(state_url), the type of the private key the planner makes for a new credential. Pass the
        same value as to the create module (the role passes C(mc_rotation_key_type) to both).
    type: str
    choices: [rsa, ec]
    default: rsa
  key_size:
    description: With O(state_url) and O(key_type=rsa), the size of that key in bits.
    type: int
    default: 2048
  now:
    description: Plan as if it were this time (ISO 8601). For what-if planning and tests; default is the clock.
    type: str
  host:
    description: With O(phase=failed), the host that failed (none when a controller step failed).
    type: str
  error:
    description: With O(phase=failed), what failed (a sentence; never a secret).
    type: str
  rolled_back_to:
    description: With O(phase=failed), the version the host was put back on.
    type: str
  deadline:
    description: With O(phase=failed), the plan's deadline (C(deadline) in RV(plan)); a retry is never scheduled after it.
    type: str
  revoked_in_portal:
    description:
      - >-
        With O(backend=portal), the person confirms that the old credential(s) of the open revoke work orders were
        revoked in the portal (the same as dropping C({"revoked": true}) into each work order's inbox file). It
        confirms only revocations a work order asked for.
    type: bool
    default: false
  rollout:
    description:
      - With O(phase=plan), the role's roll-out settings that depend on each other. They are checked before
        anything is planned, so a run that could not verify or reload its hosts never creates a credential.
    type: dict
    suboptions:
      key_formats:
        description: The files written on each host (C(mc_rotation_key_formats)).
        type: list
        elements: str
        default: [p12]
      keystore_password_set:
        description: Whether a keystore password for the hosts' PKCS#12 files is set (never the password itself).
        type: bool
        default: false
      verify_url:
        description: The probe URL each host verifies with (mtls, oauth1; oauth2 resource).
        type: str
        default: ''
      verify_token_url:
        description: The OAuth 2.0 token endpoint each host verifies with (oauth2).
        type: str
        default: ''
      reload_command:
        description: The command that reloads the application.
        type: str
        default: ''
      reload_service:
        description: The service that reloads the application.
        type: str
        default: ''
      verify_issuer:
        description: The OAuth 2.0 issuer of the probe (with O(backend=portal), for the revocation probe).
        type: str
        default: ''
      verify_ca_path:
        description: CA bundle of the verify endpoint (revocation probe).
        type: path
      verify_validate_certs:
        description: Check the verify endpoint's certificate (revocation probe).
        type: bool
        default: true
      verify_timeout:
        description: Timeout of the revocation probe, in seconds.
        type: float
        default: 10
attributes:
  check_mode:
    support: full
    details: In check mode the plan is computed but no lock is taken and nothing is written.
  diff_mode:
    support: none
notes:
  - The key store keeps the private keys of new credentials until every host has them; protect O(state_dir)
    like any secret store.
  - With O(backend=portal) the human steps are states of the same plan. V(AWAITING_ISSUE) - a create work order
    is open and nothing was brought back; the run ends at the plan and contacts no host, with a reminder that
    becomes a warning, then (within O(escalate_before) days of the in-use credential's expiry) a failure.
    V(AWAITING_REVOKE) - every host verified the new credential and the old one waits to be revoked in the portal.
    Credentials hosts use that the portal folder does not know yet (made in the portal before) are recorded
    from the hosts' facts, so that they are protected, their expiry counts, and they get a revoke work order.
seealso:
  - module: mcdev.credentials.mc_deploy
  - module: mcdev.credentials.mc_verify
  - module: mcdev.credentials.mc_revoke
"""

EXAMPLES = r"""
- name: Plan the rotation
  mcdev.credentials.mc_rotation_plan:
    project_id: "{{ project }}"
    kind: oauth1
    name: payments-signing
    hosts: "{{ groups['payments'] }}"
    state_dir: /var/lib/mcdev/rotation
  register: plan
"""

RETURN = r"""
contract_overrides:
  description:
    - The Developers API contract entries that the file in O(contract_path) changed; empty with the collection's
      own contract.
  returned: always
  type: list
  elements: str
  sample: [endpoints.list_credentials.path]
state:
  description: Where the rotation stands (IDLE, CREATING, STAGED, DEPLOYING, VERIFYING, SOAKING, REVOKING,
    FAILED_RETRYABLE, BLOCKED, LOCKED, GATHER, with O(backend=portal) AWAITING_ISSUE and AWAITING_REVOKE, with
    O(view=slice) SLICE_VERIFIED).
  returned: always
  type: str
reason:
  description: One sentence for a person.
  returned: always
  type: str
run_id:
  description: This run's lock owner; pass it to the later phases.
  returned: always
  type: str
gather:
  description: Hosts whose facts are unknown; run M(mcdev.credentials.mc_deploy) O(mcdev.credentials.mc_deploy#module:state=query) on them and plan again.
  returned: always
  type: list
create:
  description: When a new credential must be created, C({alias, rotation_id, key_path}); the private key goes
    to C(key_path) (the key store) before the API call.
  returned: always
  type: dict
deploy:
  description: When hosts must get or verify the target credential, C({hosts, verify_hosts, credential,
    key_path}).
  returned: always
  type: dict
revoke:
  description: Credential ids that may be revoked now (the invariant holds for the new credential).
  returned: always
  type: list
revoked:
  description: Credential ids revoked by this task (with O(revoke=true) - old ones with O(phase=record), orphans
    with O(phase=plan)).
  returned: always
  type: list
revoke_orphans:
  description: Credential ids whose private key exists nowhere; revoke them (the planner never lists the last active one).
  returned: always
  type: list
remote:
  description: The project's credential records (non-secret, with certificates) for the later phases.
  returned: always
  type: list
plan:
  description: The planner's full answer (actions, invariant, due time, deadline, ledger).
  returned: always
  type: dict
prepare:
  description: Whether the controller revokes orphans and/or creates the new credential before the roll-out
    (never in check mode).
  returned: always
  type: bool
rollout_hosts:
  description: The hosts that deploy, reload and verify in this run (none in check mode).
  returned: always
  type: list
  elements: str
revocation_probes:
  description:
    - With O(backend=portal), the old credentials of open revoke work orders probed at the verify endpoint
      (C(credential_id), C(confirmed), C(cause), C(msg), and C(control), the credential accepted there meanwhile).
      A refusal while the control is accepted confirms the revocation without waiting for the person.
  returned: always
  type: list
  elements: dict
work_orders:
  description:
    - With O(backend=portal), the open work orders the run waits on (C(json), C(page), C(inbox), C(step)).
  returned: always
  type: list
  elements: dict
record:
  description: Whether the run ends by recording what the hosts reported (O(phase=record)); false when the plan
    ends the run (nothing due, a wait, check mode) or must first ask hosts (RV(gather)).
  returned: always
  type: bool
"""

import datetime
import glob
import json
import os
import re
import tempfile
import time
import uuid
from dataclasses import replace

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.mcdev.credentials.plugins.module_utils import _io, _time
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, CollectionError, fail_from, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import devapi
from ansible_collections.mcdev.credentials.plugins.module_utils import inventory as inv

from ansible_collections.mcdev.credentials.plugins.module_utils import common
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils import portal
from ansible_collections.mcdev.credentials.plugins.module_utils import revoke as revoking
from ansible_collections.mcdev.credentials.plugins.module_utils import verify
from ansible_collections.mcdev.credentials.plugins.module_utils.credential import KeyStore

_LINEAGE_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class PlanFailure(CollectionError):
    pass


class Controller(object):
    """The controller-side state of one lineage: ledger, fleet cache, key store, run file. In files under
    state_dir, or with state_url in PostgreSQL (state_pg), state_dir then keeping the node's copy of the keys."""

    def __init__(self, state_dir, project_id, environment, kind, name, key_password=None, state_url=None):
        lineage = _LINEAGE_SAFE.sub("_", "%s_%s_%s_%s" % (project_id, environment, kind, name))
        self.dir = os.path.join(state_dir, lineage)
        self.shared = None
        if state_url:
            if not key_password:
                raise PlanFailure("key_store_password (mc_rotation_key_store_password) is required with state_url: "
                                  "the private keys in the shared store stay encrypted at rest")
            from ansible_collections.mcdev.credentials.plugins.module_utils import state_pg  # pylint: disable=import-outside-toplevel
            self.shared = state_pg.SharedState(state_url, lineage)
        self.ledger = self.shared.ledger() if self.shared else inv.Ledger(os.path.join(self.dir, "ledger.json"))
        self.fleet_path = os.path.join(self.dir, "fleet.json")
        self.run_path = os.path.join(self.dir, "run.json")
        # the key store of mc_oauth_key / mc_certificate (key_store option): <keys>/<project>/<env>/<alias>.key.pem
        self.keys_dir = os.path.join(self.dir, "keys")
        self.store = KeyStore(self.keys_dir, project_id, environment, passphrase=key_password)

    def ensure(self):
        os.makedirs(self.keys_dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        os.chmod(self.keys_dir, 0o700)

    def _read_json(self, path, default):
        try:
            with open(path, "r", encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            raise PlanFailure("cannot read %s: %s; fix or remove the file" % (path, exc)) from exc
        return data if isinstance(data, type(default)) else default

    def _write_json(self, path, data):
        self.ensure()
        return _io.write_if_changed(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def fleet(self):
        return self.shared.read_json("fleet", {}) if self.shared else self._read_json(self.fleet_path, {})

    def write_fleet(self, data):
        if self.shared:
            self.shared.write_json("fleet", data)
        # also on the node with a shared store: the expiry report run there reads it
        return self._write_json(self.fleet_path, data)

    def run(self):
        return self.shared.read_json("run", {}) if self.shared else self._read_json(self.run_path, {})

    def write_run(self, data):
        if self.shared:
            return self.shared.write_json("run", data)
        return self._write_json(self.run_path, data)

    def marks(self):
        """What tells that another run moved: the ledger as stored and the key store's aliases."""
        if self.shared:
            return self.ledger.snapshot(), sorted(self.shared.items(self.shared.KEY_ITEM))
        return self.ledger.snapshot(), sorted(glob.glob(os.path.join(self.store.directory, "*.key.pem")))

    def stage_key(self, alias, key_type, key_size):
        """With a shared store: the new credential's private key, made here and stored in the database before
        the create task runs (it finds the key in the node's key folder and uses it), so a container lost
        after the create leaves no orphan. Without: nothing (the create task makes the key)."""
        if not self.shared:
            return False
        self.key_store()
        if self.store.load(alias) is not None:
            return False
        self.store.save(alias, crypto.generate_private_key(key_type, key_size, "secp256r1"))
        self.key_store()  # stores it in the database (or refuses a different key stored there meanwhile)
        return True

    def close(self):
        if self.shared:
            self.shared.close()

    def key_path(self, alias):
        return self.store.path(alias)

    def key_store(self):
        """{public key fingerprint: path} of the private keys in the key store."""
        if self.shared:
            self.shared.sync_keys(self.store.directory)
        found = {}
        for path in sorted(glob.glob(os.path.join(self.store.directory, "*.key.pem"))):
            try:
                with open(path, "rb") as handle:
                    key = crypto.load_private_key(handle.read(), self.store.passphrase, source=path,
                                                  passphrase_option="key_store_password")
            except crypto.CryptoError as exc:
                raise PlanFailure("The key store file %s cannot be read: %s" % (path, exc)) from exc
            except OSError:
                continue
            found[crypto.public_key_fingerprint(key)] = path
        return found


def _record_public(record):
    """A credential record as the role passes it around (non-secret; the certificate is public)."""
    out = dict(record)
    for secret in ("private_key", "private_key_pem", "private_key_content", "p12", "password"):
        out.pop(secret, None)
    return out


def _client(module, p, desk):
    """The person's desk with backend=portal (same interface as the API client), else a Developers API client."""
    return desk if desk is not None else devapi.client_from_params(p, warn=module.warn)


def _fetch_remote(module, params, desk):
    try:
        with _client(module, params, desk) as client:
            creds = client.list_credentials(params["project_id"], environment=params["environment"])
    except devapi.DevApiError as exc:
        fail_from(module, exc, msg="Planning the rotation: %s" % exc)
    return [c.to_dict(include_certificate=True) for c in creds]


def _host_facts_in(params, cache):
    """{host: facts} for every in-scope host (cache, overlaid by this run's reports) and the unknown hosts."""
    facts = {}
    unknown = []
    reported = params["host_facts"] or {}
    for host in params["hosts"]:
        if host in reported:
            value = reported[host]
            facts[host] = dict(value, reachable=bool(value.get("reachable", bool(value))))
        elif host in cache and not params["refresh_hosts"]:
            facts[host] = cache[host]
        else:
            unknown.append(host)
    return facts, unknown


def _shape(plan, params, ctl, remote, keys, run_id, facts):
    """The plan as the role consumes it."""
    out = {"state": plan.state, "reason": plan.reason, "run_id": run_id, "gather": [], "create": None,
           "deploy": None, "revoke": [], "revoke_orphans": [], "remote": remote, "plan": plan.to_dict(),
           "rotation_id": plan.rotation_id, "invariant_ok": plan.invariant_ok, "invariant": plan.invariant,
           "deadline": _time.iso(plan.deadline), "unsupported": [], "work_orders": []}
    by_id = dict((r["id"], r) for r in remote)
    deploy_hosts, verify_hosts, target = [], [], None
    for action in plan.actions:
        if action.kind == inv.CREATE:
            # Once created, the new credential goes to every reachable in-scope host (none carries it yet).
            out["create"] = {"alias": action.alias, "rotation_id": action.rotation_id,
                             "key_store": ctl.keys_dir, "key_path": ctl.key_path(action.alias),
                             "hosts": sorted(h for h, f in facts.items() if f.get("reachable"))}
        elif action.kind == inv.ADOPT:
            target = action.credential_id
            deploy_hosts = list(params["hosts"])
        elif action.kind == inv.REVOKE_ORPHAN:
            out["revoke_orphans"].extend(action.credential_ids)
        elif action.kind == inv.REVOKE:
            out["revoke"].extend(action.credential_ids)
        elif action.kind == inv.DEPLOY:
            target = action.credential_id
            deploy_hosts = list(action.hosts)
        elif action.kind == inv.VERIFY:
            target = action.credential_id
            verify_hosts = list(action.hosts)
        elif action.kind == inv.RECOVER_KEY:
            out["unsupported"].append(
                "The private key of credential %s is not in the controller's key store (%s) but host %s carries "
                "it. Copy it into the key store as %s (PEM), or run with the key store that created it."
                % (action.credential_id, ctl.keys_dir, action.from_host,
                   ctl.key_path((by_id.get(action.credential_id) or {}).get("alias") or "<alias>")))
    target_record = by_id.get(plan.target_id) or {}
    out["target"] = dict((k, target_record.get(k)) for k in ("id", "alias", "fingerprint", "expires", "status")) \
        if target_record else None
    out["in_use_fingerprints"] = sorted(set(
        str(f.get("current_fingerprint")).lower() for f in facts.values() if f.get("current_fingerprint")))
    if target:
        record = by_id.get(target) or {}
        key_path = keys.get((record.get("public_key_fingerprint") or "").lower())
        out["deploy"] = {"hosts": sorted(set(deploy_hosts) | set(verify_hosts)), "verify_hosts": verify_hosts,
                         "flip_hosts": deploy_hosts, "credential_id": target, "credential": record,
                         "key_path": key_path, "fingerprint": record.get("fingerprint")}
    return out


def main():
    argument_spec = devapi.connection_argument_spec()
    argument_spec.update(portal.portal_argument_spec())
    argument_spec.update(portal.issued_argument_spec())
    argument_spec.update(
        phase=dict(type="str", default="plan", choices=["plan", "record", "failed", "release"]),
        project_id=dict(type="str", required=True),
        kind=dict(type="str", required=True, choices=["mtls", "oauth1", "oauth2"]),
        environment=dict(type="str", default="sandbox", choices=["sandbox", "production"]),
        name=dict(type="str", required=True),
        alias_prefix=dict(type="str"),
        hosts=dict(type="list", elements="str", default=[]),
        host_facts=dict(type="dict", default={}),
        refresh_hosts=dict(type="bool", default=False),
        remote=dict(type="list", elements="dict"),
        created=dict(type="dict"),
        revoked=dict(type="list", elements="str", default=[]),
        revoke=dict(type="bool", default=False),
        run_id=dict(type="str"),
        state_dir=dict(type="path", required=True),
        key_store_password=dict(type="str", no_log=True),
        lead_days=dict(type="float", default=0),
        soak_hours=dict(type="float", default=0),
        force=dict(type="bool", default=False),
        respect_backoff=dict(type="bool", default=True),
        max_attempts=dict(type="int", default=5),
        backoff_base_minutes=dict(type="float", default=60),
        backoff_max_hours=dict(type="float", default=24),
        lock_ttl_minutes=dict(type="float", default=60),
        lock_wait_seconds=dict(type="float", default=0),
        view=dict(type="str", default="full", choices=["full", "slice"]),
        state_url=dict(type="str", no_log=True, fallback=(env_fallback, ["MC_ROTATION_STATE_URL"])),
        key_type=dict(type="str", default="rsa", choices=["rsa", "ec"], no_log=False),
        key_size=dict(type="int", default=2048, no_log=False),
        now=dict(type="str"),
        host=dict(type="str"),
        error=dict(type="str"),
        rolled_back_to=dict(type="str"),
        deadline=dict(type="str"),
        revoked_in_portal=dict(type="bool", default=False),
        rollout=dict(type="dict", options=dict(
            key_formats=dict(type="list", elements="str", default=["p12"], no_log=False),
            keystore_password_set=dict(type="bool", default=False, no_log=False),
            verify_url=dict(type="str", default=""),
            verify_token_url=dict(type="str", default="", no_log=False),
            reload_command=dict(type="str", default=""),
            reload_service=dict(type="str", default=""),
            verify_issuer=dict(type="str", default=""),
            verify_ca_path=dict(type="path"),
            verify_validate_certs=dict(type="bool", default=True),
            verify_timeout=dict(type="float", default=10),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           **devapi.connection_constraints())
    with unforeseen_errors(module, ("state_dir", "signing_key_path", "ca_path")):
        p = module.params
        try:
            now = _time.parse(p["now"]) if p["now"] else _time.now()
        except ValueError:
            module.fail_json(msg="now=%r is not an ISO 8601 time (for example 2026-01-31T12:00:00Z)" % p["now"])
        for option in ("lead_days", "soak_hours", "backoff_base_minutes", "backoff_max_hours", "lock_ttl_minutes",
                       "lock_wait_seconds"):
            if p[option] < 0:
                module.fail_json(msg="%s must not be negative, got %s" % (option, p[option]))
        if p["max_attempts"] < 1:
            module.fail_json(msg="max_attempts must be at least 1, got %s" % p["max_attempts"])
        if not p["name"] or "/" in p["name"]:
            module.fail_json(msg="name %r must be a folder name without '/'" % p["name"])
        if p["phase"] == "plan" and p["rollout"]:
            problems = inv.rollout_problems(p["kind"], **dict((name, p["rollout"][name]) for name in (
                "key_formats", "keystore_password_set", "verify_url", "verify_token_url", "reload_command",
                "reload_service")))
            if problems:
                module.fail_json(msg=" ".join(problems))
        ctl = None
        try:
            ctl = Controller(p["state_dir"], p["project_id"], p["environment"], p["kind"], p["name"],
                             p["key_store_password"], p["state_url"])
            if p["phase"] in ("plan", "record"):
                result = _plan_waiting(module, p, ctl, now)
            elif p["phase"] == "failed":
                result = _failed(module, p, ctl, now)
            else:
                result = _release(module, p, ctl, now)
        except HANDLED as exc:
            # the shared store's errors (state_pg.SharedStateError) are among these: retryable=true, a retry may succeed
            fail_from(module, exc)
        except ValueError as exc:
            module.fail_json(msg="The rotation cannot be planned: %s" % exc)
        try:
            result["contract_overrides"] = devapi.contract_from_params(p).overridden
        except devapi.DevApiError as exc:
            fail_from(module, exc)
        finally:
            if ctl is not None:
                ctl.close()
        failed = result.pop("_fail", None)
        if failed:
            module.fail_json(msg=failed, **result)
        module.exit_json(**result)


# While waiting on another run's lock: how often the lineage's files are looked at, and the longest time
# between two plans (each plan lists the project's credentials: one API call).
_LOCK_POLL_SECONDS = 0.5
_LOCK_REPLAN_SECONDS = 5.0


def _plan_waiting(module, p, ctl, now):
    """_plan_phase; while another run holds the lock, plan again (up to lock_wait_seconds) when the ledger or the
    key store changes, or every few seconds."""
    give_up = time.monotonic() + p["lock_wait_seconds"]
    while True:
        result = _plan_phase(module, p, ctl, now)
        left = give_up - time.monotonic()
        if result["state"] != inv.LOCKED or p["phase"] != "plan" or module.check_mode or left <= 0:
            return result
        seen = ctl.marks()
        until = time.monotonic() + min(left, _LOCK_REPLAN_SECONDS)
        while time.monotonic() < until and ctl.marks() == seen:
            time.sleep(_LOCK_POLL_SECONDS)
        if not p["now"]:
            now = _time.now()


def _plan_phase(module, p, ctl, now):
    run_id = p["run_id"] or "%s@%s" % (uuid.uuid4().hex[:12], os.uname()[1])
    owner = None if module.check_mode else run_id
    desk, orders = _portal_desk(p, now)
    remote = p["remote"] if p["remote"] is not None else _fetch_remote(module, p, desk)
    if p["created"]:
        created = _record_public(p["created"])
        remote = [r for r in remote if r.get("id") != created.get("id")] + [created]
    cache = ctl.fleet()
    facts, unknown = _host_facts_in(p, cache)
    if unknown:
        # Ask these hosts first (mc_deploy state=query), then plan again with their answers.
        return {"changed": False, "state": "GATHER", "run_id": run_id, "gather": unknown, "remote": remote,
                "reason": "The controller has no facts about host(s) %s (new hosts, or a fresh controller); "
                          "they are asked first." % ", ".join(unknown),
                "create": None, "deploy": None, "revoke": [], "revoke_orphans": [], "plan": {},
                "rotation_id": None, "invariant_ok": False, "invariant": "", "deadline": None, "unsupported": [],
                "target": None, "in_use_fingerprints": [], "revoked": [], "work_orders": [], "revocation_probes": [],
                "prepare": False, "rollout_hosts": [], "record": False}
    if desk is not None:
        listed = {r.get("id") for r in remote}
        adopted = desk.adopt_in_use(p["environment"], p["alias_prefix"] or p["name"], facts, write=not module.check_mode)
        remote = remote + [c.to_dict(include_certificate=True) for c in adopted if c.id not in listed]
    keys = ctl.key_store()
    probed = _confirm_revocations_by_probe(module, p, desk, orders, remote, keys) if desk is not None else []
    backoff = inv.Backoff(base=datetime.timedelta(minutes=p["backoff_base_minutes"]),
                          cap=datetime.timedelta(hours=p["backoff_max_hours"]))

    def planning(record):
        if p["created"]:
            record = replace(record, credential_id=str(p["created"].get("id")), soak_started_at=None)
        if not p["respect_backoff"] and record.next_attempt_at is not None:
            return record, replace(record, next_attempt_at=None)
        return record, record

    def plan_for(record, plan_owner):
        return inv.plan_rotation(
            remote, facts, record, now, kind=p["kind"], environment=p["environment"],
            alias_prefix=p["alias_prefix"] or p["name"], lead=p["lead_days"] or None,
            soak_seconds=p["soak_hours"] * 3600.0, force=p["force"], max_attempts=p["max_attempts"],
            backoff=backoff, key_store=list(keys), owner=plan_owner,
            lock_ttl=datetime.timedelta(minutes=p["lock_ttl_minutes"]),
            work_orders=dict((step, dict((key, person.answered) for key, person in open_orders.items()))
                             for step, open_orders in orders.items()),
            partial_view=p["view"] == "slice")

    # Refuse bad options (e.g. a lead time not shorter than the credential's lifetime) with a read-only
    # plan first, before the lineage folder is created or the ledger lock is taken: a refused run leaves
    # nothing behind.
    plan_for(planning(ctl.ledger.read())[1], None)
    with ctl.ledger.locked():
        record = ctl.ledger.read()
        stored = record
        record, planning_record = planning(record)
        plan = plan_for(planning_record, owner)
        new_record = plan.ledger
        if planning_record is not record:
            new_record = replace(new_record, next_attempt_at=record.next_attempt_at)
        kinds = set(plan.action_kinds())
        idle = kinds <= inv.IDLE_ACTIONS
        revoked, revoke_error, waiting = [], None, []
        orphans = [cid for action in plan.actions if action.kind == inv.REVOKE_ORPHAN
                   for cid in action.credential_ids]
        if p["phase"] == "plan" and p["revoke"] and owner and orphans:
            # Carried out here rather than by a separate task: same guards as mc_revoke, on a fresh list.
            revoked, revoke_error, waiting = _revoke_old(module, p, orphans, facts, now, desk)
            if revoke_error:
                new_record = inv.release_lock(inv.ledger_after(replace(plan, ledger=new_record), {
                    "ok": False, "at": _time.iso(now),
                    "error": "revoking orphan(s) %s failed: %s" % (", ".join(orphans), revoke_error)}), owner)
            else:
                # done here: with nothing else to do, the run ends at this plan (and releases its lock below)
                kinds.discard(inv.REVOKE_ORPHAN)
                idle = kinds <= inv.IDLE_ACTIONS
                if idle and new_record.attempts:
                    new_record = inv.ledger_after(replace(plan, ledger=new_record),
                                                  {"ok": True, "at": _time.iso(now)})
        if p["phase"] == "record" and owner:
            if plan.state == inv.REVOKING and p["revoke"]:
                ids = [cid for action in plan.actions if action.kind == inv.REVOKE for cid in action.credential_ids]
                revoked, revoke_error, waiting = _revoke_old(module, p, ids, facts, now, desk)
                if not waiting or revoke_error:
                    # a revocation that waits for the person in the portal is neither done nor failed
                    new_record = inv.ledger_after(replace(plan, ledger=new_record), {
                        "ok": revoke_error is None, "at": _time.iso(now), "error": revoke_error})
            elif p["host_facts"] and new_record.attempts:
                # the fleet came through: clear the backoff of earlier failures
                new_record = inv.ledger_after(inv.Plan(state=inv.VERIFYING, actions=(inv.Action(inv.VERIFY),),
                                                       reason="", ledger=new_record), {"ok": True,
                                                                                       "at": _time.iso(now)})
            new_record = inv.release_lock(new_record, owner)  # the record phase ends the run
        elif idle and owner:
            new_record = inv.release_lock(new_record, owner)
        if not module.check_mode and plan.state != inv.LOCKED:
            if new_record != stored:
                ctl.ledger.write(new_record)
            if p["host_facts"]:
                # read again under the lock: slices that ended since this run began recorded their hosts
                merged = ctl.fleet()
                merged.update(facts)
                if p["view"] == "full":
                    # hosts no longer in scope are forgotten; a slice keeps the other slices' hosts
                    merged = dict((h, merged[h]) for h in p["hosts"] if h in merged)
                ctl.write_fleet(merged)
    out = _shape(plan, p, ctl, remote, keys, run_id, facts)
    if p["phase"] == "plan" and revoked:
        out["revoke_orphans"] = [cid for cid in out["revoke_orphans"] if cid not in revoked]
        out["remote"] = [dict(r, status="REVOKED") if r.get("id") in revoked else r for r in out["remote"]]
    out.update(inv.role_steps(plan.state, create=out["create"], deploy=out["deploy"],
                              revoke_orphans=out["revoke_orphans"], check_mode=module.check_mode))
    out["revocation_probes"] = probed
    out["changed"] = bool(revoked) or any(person.written for person in waiting) or any(
        probe["confirmed"] for probe in probed)
    out["revoked"] = revoked
    _remind(module, p, plan, out, orders, waiting, now)
    if revoke_error and p["phase"] == "plan":
        out["_fail"] = ("Rotation of %s stopped: revoking orphan credential(s) %s (their private key exists "
                        "nowhere) failed: %s Nothing was created; the next run tries again."
                        % (p["name"], ", ".join(orphans), revoke_error))
        return out
    if revoke_error:
        out["_fail"] = ("Rotation of %s: every host verified credential %s, but revoking the old credential(s) "
                        "failed: %s The next run tries again." % (p["name"], plan.target_id, revoke_error))
        return out
    if out["create"] and not module.check_mode:
        os.makedirs(ctl.store.directory, mode=0o700, exist_ok=True)
        ctl.stage_key(out["create"]["alias"], p["key_type"], p["key_size"])
    if plan.state == inv.LOCKED:
        out["_fail"] = ("Credential %s (%s, %s) is being rotated by another run: %s"
                        % (p["name"], p["kind"], p["environment"], plan.reason))
    elif plan.state == inv.BLOCKED:
        out["_fail"] = "The rotation of %s is blocked: %s" % (p["name"], plan.reason)
    elif out["unsupported"]:
        out["_fail"] = " ".join(out["unsupported"])
    if out["deploy"] and not out["deploy"]["key_path"] and out["deploy"]["flip_hosts"]:
        carried = [h for h, f in facts.items() if any(
            v.get("credential_id") == out["deploy"]["credential_id"] for v in (f.get("versions") or []))]
        if not carried:
            out["_fail"] = ("Credential %s must be deployed to %s but its private key is neither in the key store "
                            "(%s) nor on any host." % (out["deploy"]["credential_id"],
                                                       ", ".join(out["deploy"]["flip_hosts"]), ctl.keys_dir))
    if out.get("_fail") and owner and plan.state != inv.LOCKED and not module.check_mode:
        with ctl.ledger.locked():
            ctl.ledger.write(inv.release_lock(ctl.ledger.read(), owner))
    return out


def _portal_desk(p, now):
    """(the person's desk, its open work orders {"create": {alias: ...}, "revoke": {id: ...}}); (None, empty)
    with backend=api. revoked_in_portal confirms the open revoke work orders, and only those."""
    if p["backend"] != "portal":
        return None, {"create": {}, "revoke": {}}
    desk = portal.PortalDesk(p["portal_dir"], p["project_id"], p["kind"], issued=p["issued"], now=now)
    orders = desk.open_orders(p["environment"])
    if p["revoked_in_portal"]:
        desk.revoked_confirmed = set(orders["revoke"])
        for person in orders["revoke"].values():
            person.answered = True
    return desk, orders


def _remind(module, p, plan, out, orders, waiting, now):
    """While the next step is a person's: where the work order is, and the reminder, louder near the expiry of the
    credential in use (a warning, then a failure within escalate_before days)."""
    if plan.state == inv.AWAITING_ISSUE:
        in_use = next((inv.RemoteCredential.from_dict(r) for r in out["remote"] if r.get("id") == plan.in_use_id), None)
        reminder, escalated = portal.awaiting_result(orders["create"][plan.alias], in_use, p["escalate_before"], now)
        for warning in reminder.get("warnings") or ():
            module.warn(warning)
        out["work_orders"] = [dict(reminder["work_order"], step="create")]
        out["reason"] = "%s %s." % (plan.reason, reminder["msg"])
        if escalated:
            out["_fail"] = "The rotation of %s waits for a person: %s" % (p["name"], out["reason"])
        return
    people = waiting or [orders["revoke"][cid] for action in plan.actions if action.kind == inv.AWAIT_PERSON
                         for cid in action.credential_ids]
    if people:
        reminder = portal.revoke_waiting_result(people)
        out["work_orders"] = [dict(order, step="revoke") for order in reminder["work_orders"]]
        if waiting and plan.state == inv.REVOKING:
            out["state"] = inv.AWAITING_REVOKE
        out["reason"] = "%s %s." % (plan.reason, reminder["msg"])


def _probe(p, record, key_path):
    """verify.run_probe with a credential whose key is in the key store, against the role's verify endpoint."""
    settings = p["rollout"]
    with tempfile.TemporaryDirectory(prefix="mcdev-probe-") as scratch:
        certificate_path = None
        if record.get("certificate_pem"):
            certificate_path = os.path.join(scratch, "cert.pem")
            with open(certificate_path, "w", encoding="ascii") as handle:
                handle.write(record["certificate_pem"])
        return verify.run_probe({
            "kind": p["kind"], "url": settings["verify_url"] or None, "token_url": settings["verify_token_url"] or None,
            "issuer": settings["verify_issuer"] or None, "ca_path": settings["verify_ca_path"],
            "validate_certs": settings["verify_validate_certs"], "timeout": settings["verify_timeout"],
            "private_key_path": key_path, "private_key_password": p["key_store_password"],
            "certificate_path": certificate_path, "consumer_key": record.get("consumer_key"),
            "client_id": record.get("client_id"), "kid": record.get("kid")}, tmpdir=scratch)


def _confirm_revocations_by_probe(module, p, desk, orders, remote, keys):
    """Open revoke work orders nobody answered yet, whose old credential the endpoint now turns away while the
    credential that replaced it is accepted there (the control, so a wrong URL or CA proves nothing): answered
    for the person. Needs both private keys in the key store and the role's verify settings (rollout); without
    them the person's word (inbox, revoked_in_portal) closes the work order. Returns what was probed."""
    settings = p["rollout"] or {}
    pending = [person for person in orders["revoke"].values() if not person.answered]
    if not pending or not (settings.get("verify_url") or settings.get("verify_token_url")):
        return []
    by_id = dict((r.get("id"), r) for r in remote)
    pending_ids = {person.order["credential_id"] for person in pending}
    candidates = [r for r in remote if inv.is_active(r.get("status")) and r.get("id") not in pending_ids
                  and keys.get((r.get("public_key_fingerprint") or "").lower())]
    control = max(candidates, key=lambda r: r.get("created") or "", default=None)
    if control is None:
        return []
    accepted = _probe(p, control, keys[control["public_key_fingerprint"].lower()])
    probed = []
    for person in pending:
        old = by_id.get(person.order["credential_id"]) or {}
        key_path = keys.get((old.get("public_key_fingerprint") or "").lower())
        if not key_path or not accepted["success"]:
            continue
        refused = _probe(p, old, key_path)
        confirmed = not refused["success"] and refused["cause"] in verify.REFUSED_CAUSES
        if confirmed:
            desk.confirm_revoked(person, "probe: %s refused (%s) while %s is accepted" % (
                old["id"], refused["cause"], control["id"]), write=not module.check_mode)
        probed.append({"credential_id": old["id"], "confirmed": confirmed, "cause": refused["cause"],
                       "msg": refused["msg"], "control": control["id"]})
    return probed


def _revoke_old(module, p, ids, facts, now, desk=None):
    """Revoke ``ids`` with mc_revoke's guards, on a fresh list. Returns (revoked ids, error sentence or None, the
    revocations that wait for a person at the portal)."""
    in_use = sorted(set(str(f.get("current_fingerprint")).lower() for f in facts.values()
                        if f.get("reachable") and f.get("current_fingerprint")))
    revoked, waiting = [], []
    try:
        with _client(module, p, desk) as client:
            creds = client.list_credentials(p["project_id"], environment=p["environment"], kind=p["kind"])
            targets, _already, missing = revoking.select(creds, ids=ids, now=now)
            if missing:
                return revoked, ("%s no longer listed in project %s." % (
                    ", ".join(value for _option, value in missing), p["project_id"])), waiting
            revoking.check_guards(creds, targets, in_use, now=now,
                                  scope="project %s %s" % (p["project_id"], p["environment"]))
            for cred in targets:
                try:
                    after = client.revoke_credential(p["project_id"], cred.id)
                except portal.AwaitingPerson as person:
                    waiting.append(person)
                    continue
                if (after.status or "").upper() != revoking.REVOKED:
                    return revoked, ("the API answered the revocation of %s with status %s." % (cred.id, after.status)), \
                        waiting
                revoked.append(str(cred.id))
    except revoking.RevokeRefused as exc:
        return revoked, str(exc), waiting
    except (devapi.DevApiError, common.InputError) as exc:
        return revoked, str(exc), waiting
    return revoked, None, waiting


def _failed(module, p, ctl, now):
    if not p["run_id"]:
        module.fail_json(msg="phase=failed needs run_id")
    error = (p["error"] or "unknown error").strip()
    where = p["host"] or "controller"
    message = "host %s: %s" % (where, error) if p["host"] else error
    with ctl.ledger.locked():
        record = ctl.ledger.read()
        run = ctl.run()
        first = run.get("run_id") != p["run_id"]
        if first:
            run = {"run_id": p["run_id"], "failed_hosts": {}}
        run["failed_hosts"][where] = error
        if first:
            step = inv.Action(inv.DEPLOY, hosts=(p["host"],)) if p["host"] else inv.Action(inv.CREATE)
            plan = inv.Plan(state=inv.DEPLOYING if p["host"] else inv.CREATING, actions=(step,), reason="",
                            ledger=record, deadline=_time.parse(p["deadline"]) if p["deadline"] else None,
                            backoff=inv.Backoff(base=datetime.timedelta(minutes=p["backoff_base_minutes"]),
                                                cap=datetime.timedelta(hours=p["backoff_max_hours"])))
            record = inv.ledger_after(plan, {"ok": False, "at": _time.iso(now), "error": message})
        else:
            record = replace(record, last_error="%s; %s" % (record.last_error, message))
        record = inv.release_lock(record, p["run_id"])
        if not module.check_mode:
            ctl.ledger.write(record)
            ctl.write_run(run)
            if p["host"]:
                fleet = ctl.fleet()
                facts = (p["host_facts"] or {}).get(p["host"])
                if facts:
                    fleet[p["host"]] = facts
                else:
                    fleet.pop(p["host"], None)  # unknown now: ask it again next time
                ctl.write_fleet(fleet)
    hosts = sorted(h for h in run["failed_hosts"] if h != "controller")
    back = (" It was put back on version %s." % p["rolled_back_to"]) if p["rolled_back_to"] else ""
    retry = ""
    if record.next_attempt_at:
        retry = (" Attempt %d failed; a scheduled run retries after %s (a manual run retries at once)."
                 % (record.attempts, _time.iso(record.next_attempt_at)))
    if p["host"]:
        text = ("Rotation of %s stopped on host %s: %s.%s Nothing was revoked: the old credential stays active."
                "%s" % (p["name"], p["host"], error.rstrip("."), back, retry))
    else:
        text = ("Rotation of %s stopped: %s. Nothing was revoked: the old credential stays active.%s"
                % (p["name"], error.rstrip("."), retry))
    return {"changed": True, "failed_hosts": hosts, "ledger": record.to_dict(), "_fail": text}


def _release(module, p, ctl, now):
    if not p["run_id"]:
        module.fail_json(msg="phase=release needs run_id")
    with ctl.ledger.locked():
        record = ctl.ledger.read()
        stored = record
        if p["revoked"]:
            plan = inv.Plan(state=inv.REVOKING,
                            actions=(inv.Action(inv.REVOKE, credential_ids=tuple(p["revoked"])),),
                            reason="", ledger=record)
            record = inv.ledger_after(plan, {"ok": True, "at": _time.iso(now)})
        elif record.attempts:
            # this run came through: clear the backoff of earlier failures
            plan = inv.Plan(state=inv.VERIFYING, actions=(inv.Action(inv.VERIFY),), reason="", ledger=record)
            record = inv.ledger_after(plan, {"ok": True, "at": _time.iso(now)})
        record = inv.release_lock(record, p["run_id"])
        if not module.check_mode and record != stored:
            ctl.ledger.write(record)
    return {"changed": bool(p["revoked"]), "ledger": record.to_dict(), "state": "RELEASED",
            "reason": "Lock released."}


if __name__ == "__main__":
    main()
