# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of a rotation after the files are in place: reload, prove, record, or put the host back.

mc_deploy runs this in the same module process as the deploy when it is given ``reload_command`` and/or
``verify``, so a host takes part in a rotation with one task instead of three (deploy, reload, verify).
The steps stay available one by one: ``ansible.builtin.command``, mc_verify ``record`` and mc_deploy
``state=rollback`` use the same code underneath (deploy.Layout, verify.run_probe, deploy.record_verification).
"""

from __future__ import annotations

import os

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils.deploy import (
    DeployError,
    Layout,
    record_verification,
)


class RolloutError(CollectionError):
    """A step failed; ``details`` are the result keys the module returns with the failure."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def fields(self):
        return dict(self.details)


def probe_material(version_path, key_formats, keystore_password):
    """mc_verify's material options for the files mc_deploy wrote into ``version_path``."""
    if "p12" in key_formats:
        return {"pkcs12_path": os.path.join(version_path, "key.p12"), "pkcs12_password": keystore_password}
    return {"private_key_path": os.path.join(version_path, "key.pem"),
            "certificate_path": os.path.join(version_path, "cert.pem")}


def reload_due(deployed):
    """Reload when ``current`` moved, or when the version it points at was never verified on this host.

    A re-run after a crash between the flip and the proof therefore reloads again; a host already running
    a verified version is left alone.
    """
    facts = deployed["host_facts"]
    return bool(deployed["flipped"]) or not facts.get("verified_fingerprint") or (
        facts.get("verified_fingerprint") != facts.get("current_fingerprint"))


class Rollout(object):
    """Reload, verify and record one deployed version; roll back to the previous one when a step fails.

    ``run_command`` is AnsibleModule.run_command (a command string is split like ansible.builtin.command's
    ``cmd``: no shell). ``tmpdir`` is where a probe may write its short-lived files.
    """

    def __init__(self, path, name, credential_id, run_command, tmpdir=None, owner=None, group=None):
        self.path = path
        self.name = name
        self.credential_id = credential_id
        self.run_command = run_command
        self.tmpdir = tmpdir
        self.owner = owner
        self.group = group

    def run(self, deployed, reload_command=None, verify=None, material=None, rollback_on_failure=True,
            check_mode=False):
        """Return the keys to add to mc_deploy's result; raise RolloutError when a step failed.

        ``deployed`` is mc_deploy's result, with ``reload_due`` (see reload_due()) and ``host_facts``.
        """
        out = {"reloaded": False, "verification": None, "recorded": None, "rolled_back_to": None}
        due = deployed["reload_due"]
        if check_mode:
            # Nothing runs: the version may not even exist yet. Report what a real run would do.
            out["reloaded"] = bool(reload_command) and due
            return out
        try:
            if reload_command and due:
                self._reload(reload_command, "reload_command failed")
                out["reloaded"] = True
            if verify:
                out.update(self._verify(verify, material, deployed))
        except RolloutError as failure:
            failure.details.setdefault("reloaded", out["reloaded"])
            if rollback_on_failure:
                self._put_back(failure, reload_command)
            raise
        return out

    def _reload(self, command, what):
        rc, stdout, stderr = self.run_command(command)
        if rc != 0:
            tail = (stderr or stdout or "").strip()
            raise RolloutError("%s (rc %s)%s" % (what, rc, (": " + tail[-500:]) if tail else ""),
                               rc=rc, stdout=stdout, stderr=stderr)

    def _verify(self, verify, material, deployed):
        # Imported here: a deploy without verify never loads the probe code or its libraries.
        from ansible_collections.mcdev.credentials.plugins.module_utils import verify as _verify

        params = dict(verify, **material)
        if not params.get("expected_fingerprint"):
            params["expected_fingerprint"] = deployed["host_facts"].get("current_fingerprint")
        missing = _verify.missing_libraries(params["kind"])
        if missing:
            raise RolloutError("verify: the %s probe needs the Python library %s on the host (%s)"
                               % (params["kind"], missing[0][0], missing[0][1]))
        probe = _verify.run_probe(params, tmpdir=self.tmpdir)
        probe.pop("response", None)
        if not probe["success"]:
            raise RolloutError("verify: %s" % probe["msg"], verification=probe)
        try:
            done = record_verification(self.path, self.name, self.credential_id, probe["fingerprint"],
                                       owner=self.owner, group=self.group)
        except (DeployError, OSError) as exc:
            raise RolloutError("verify: the credential works, but recording the verification failed: %s" % exc,
                               verification=probe) from exc
        return {"verification": probe, "host_facts": done["host_facts"], "recorded": done["recorded"]}

    def _put_back(self, failure, reload_command):
        """Point ``current`` back at the previous version and reload again; say so in the failure."""
        try:
            with Layout(self.path, self.name, create=False) as layout:
                back = layout.rollback(only_from=self.credential_id)
                failure.details["host_facts"] = layout.host_facts()
        except (DeployError, OSError) as exc:
            failure.msg += "; rolling back failed too: %s" % exc
            return
        if not back["flipped"]:
            failure.msg += "; not rolled back: %s" % back.get("msg", "current is already elsewhere")
            return
        failure.details["rolled_back_to"] = back["current"]
        failure.msg += "; rolled back to %s" % back["current"]
        if reload_command:
            try:
                self._reload(reload_command, "reloading the previous version failed")
            except RolloutError as again:
                failure.msg += "; %s" % again.msg
