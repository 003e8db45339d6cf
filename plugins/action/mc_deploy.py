# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of mc_deploy: read the bundle from the controller's key store, build the
host's files (PKCS#12 and/or PEM key, certificate) and hand them to the module, no_log."""

from __future__ import annotations

import base64
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

try:
    from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
except ImportError:  # pragma: no cover - the collection is always importable on the controller
    crypto = None

MODULE = "mcdev.credentials.mc_deploy"
# options consumed here and never sent to the host
CONTROLLER_ONLY = ("private_key_src", "private_key_passphrase", "certificate_src", "certificate", "keystore_password")


def _read(path, option):
    path = os.path.expanduser(path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise AnsibleActionFail("%s: cannot read %s on the controller: %s" % (option, path, exc.strerror)) from exc


def build_bundle(args):
    """{file name: bytes} for the host from the controller-side options (raises AnsibleActionFail)."""
    if crypto is None:
        raise AnsibleActionFail("mc_deploy needs the collection's module_utils on the controller")
    formats = args.get("key_formats") or ["p12"]
    if isinstance(formats, str):
        formats = [formats]
    key_src = args.get("private_key_src")
    if args.get("certificate_src") and args.get("certificate"):
        raise AnsibleActionFail("mc_deploy: certificate and certificate_src are mutually exclusive; give only one")
    if args.get("certificate_src"):
        cert_pem = _read(args["certificate_src"], "certificate_src")
    elif args.get("certificate"):
        cert_pem = to_text(args["certificate"]).encode("utf-8")
    else:
        raise AnsibleActionFail("mc_deploy: certificate or certificate_src is required with private_key_src")
    try:
        certs = crypto.load_certificates(cert_pem, source="certificate")
        key = crypto.load_private_key(_read(key_src, "private_key_src"), args.get("private_key_passphrase"),
                                      source="private_key_src", passphrase_option="private_key_passphrase")
        if not crypto.same_key(key, certs[0]):
            raise AnsibleActionFail("mc_deploy: the certificate does not belong to the private key in %s "
                                    "(public key fingerprints differ)" % key_src)
        files = {"cert.pem": crypto.dump_certificates(certs)}
        for fmt in formats:
            if fmt == "p12":
                if not args.get("keystore_password"):
                    raise AnsibleActionFail("mc_deploy: keystore_password is required when key_formats contains p12")
                files["key.p12"] = crypto.dump_pkcs12(key, certs[0], certs[1:], args["keystore_password"],
                                                      friendly_name=args.get("name"))
            elif fmt == "pem":
                files["key.pem"] = crypto.dump_private_key(key, "pkcs8_pem")
            else:
                raise AnsibleActionFail("mc_deploy: key_formats entry %r is not one of p12, pem" % fmt)
    except crypto.CryptoError as exc:
        raise AnsibleActionFail("mc_deploy: %s" % exc) from exc
    return files


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        module_args = dict((k, v) for k, v in args.items() if k not in CONTROLLER_ONLY)
        if args.get("verify") and args.get("keystore_password") is not None:
            # The probe on the host opens the key.p12 it just wrote (no_log, like the bundle itself).
            module_args["keystore_password"] = args["keystore_password"]
        try:
            if args.get("state", "present") == "present" and args.get("private_key_src"):
                files = build_bundle(args)
                module_args["_bundle"] = dict((k, to_text(base64.b64encode(v))) for k, v in files.items())
                module_args["key_formats"] = args.get("key_formats") or ["p12"]
            elif args.get("certificate_src") or args.get("certificate"):
                if args.get("state", "present") == "present" and not args.get("private_key_src"):
                    raise AnsibleActionFail("mc_deploy: private_key_src is required with certificate/certificate_src")
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=to_text(exc.message))
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars))
        return result
