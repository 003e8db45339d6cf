# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What mc_csr and mc_keystore do on the managed host: read what exists,
decide against the options, then write atomically.

Every check runs before the first write, so a refusal leaves the files as
they were. Results and diffs carry facts (fingerprints, subject, key type),
never key bytes or passphrases.
"""

from __future__ import annotations

import os

from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.common import (
    EXISTING_ABSENT,
    EXISTING_DIFFERS,
    EXISTING_MATCHES,
    EXISTING_UNREADABLE,
    PRIVATE_MODE,
    PUBLIC_MODE,
    InputError,
    apply_file_args,
    atomic_write,
    backup_local,
    check_parent_dir,
    needs_regeneration,
    read_if_exists,
    read_required,
)

# Individual subject options, in the order they are placed in the subject.
SUBJECT_OPTIONS = (
    ("common_name", "CN"),
    ("organization_name", "O"),
    ("organizational_unit_name", "OU"),
    ("locality_name", "L"),
    ("state_or_province_name", "ST"),
    ("country_name", "C"),
    ("email_address", "emailAddress"),
)


def subject_from_params(params):
    """Ordered subject pairs from ``subject`` followed by the individual name options."""
    pairs = crypto.normalize_subject(params.get("subject"))
    from_subject = {pair[0] for pair in pairs}
    for option, short in SUBJECT_OPTIONS:
        value = params.get(option)
        if value in (None, ""):
            continue
        if short in from_subject:
            raise InputError("%s is set both in subject and as %s; keep one of them" % (short, option))
        pairs.extend(crypto.normalize_subject([(short, value)]))
    if not crypto.common_name(pairs):
        raise InputError("a common name is required; set common_name (or subject with a CN entry)")
    return pairs


def key_facts(key, container=None):
    facts = crypto.describe_key(key)
    if container is not None:
        facts["format"] = container.format
        facts["encrypted"] = container.encrypted
    return facts


# ------------------------------------------------------------------- mc_csr

def ensure_csr(module):
    """Private key and CSR for one credential; returns the module result."""
    params = module.params
    key_path = params["privatekey_path"]
    csr_path = params["csr_path"]
    passphrase = params.get("privatekey_passphrase") or None
    regenerate = "always" if params.get("force") else params["regenerate"]
    key_type = params["type"]
    size = params["size"] if key_type == "rsa" else None
    curve = params["curve"] if key_type == "ec" else None
    key_source = "privatekey_path %s" % key_path

    csr_data = read_if_exists(csr_path, "csr_path")
    subject, sans, renewal, expiring = _requested_names(params, csr_data)
    check_parent_dir(key_path, "privatekey_path")
    check_parent_dir(csr_path, "csr_path")

    # What exists at privatekey_path, as the regenerate ladder sees it.
    key, container, reason = None, None, None
    existing = EXISTING_ABSENT
    key_data = read_if_exists(key_path, "privatekey_path")
    if key_data is not None:
        try:
            container = crypto.read_key_container(key_data, passphrase, key_source, "privatekey_passphrase")
            key = container.key
            reason = crypto.key_spec_difference(key, key_type, size, curve)
            existing = EXISTING_DIFFERS if reason else EXISTING_MATCHES
        except crypto.CryptoError as exc:
            existing, reason = EXISTING_UNREADABLE, str(exc)
    before_key = key_facts(key, container) if key is not None else None

    new_key = needs_regeneration(regenerate, existing, what="the private key at %s" % key_path, reason=reason)
    warnings = []
    if new_key:
        key = crypto.generate_private_key(key_type, size or 2048, curve or "secp256r1")
    elif existing == EXISTING_DIFFERS:
        warnings.append("regenerate=never keeps the private key at %s although %s" % (key_path, reason))
    # Same key, other protection (passphrase added or removed): rewrite it, never replace it.
    rewrite_key = new_key or container.encrypted != bool(passphrase)

    # Mastercard's rules are checked before anything is written.
    crypto.check_profile(params["profile"], key, subject, sans)

    if expiring is not None and crypto.same_key(key, expiring):
        warnings.append("the private key at %s is the one the expiring certificate certifies; a renewal with a new "
                        "key is safer (set regenerate=always, or another privatekey_path)" % key_path)
    before_csr, csr_reasons = None, ["absent"]
    if csr_data is not None:
        try:
            old_csr = crypto.load_csr(csr_data, "csr_path %s" % csr_path)
            before_csr = crypto.describe_csr(old_csr)
            csr_reasons = crypto.csr_differences(old_csr, key, subject, sans)
        except crypto.CryptoError as exc:
            if regenerate not in ("full_idempotence", "always"):
                raise InputError("%s; set regenerate=full_idempotence (or force=true) to replace it" % exc) from None
            csr_reasons = ["unreadable"]
    new_csr = bool(csr_reasons) or regenerate == "always"
    csr = crypto.build_csr(key, subject, sans) if new_csr else old_csr
    csr_pem = crypto.dump_csr(csr)

    result = {"changed": rewrite_key or new_csr, "privatekey_path": key_path, "csr_path": csr_path}
    if not module.check_mode:
        if params.get("backup"):
            if rewrite_key:
                result["backup_privatekey"] = backup_local(module, key_path, private=True)
            if new_csr:
                result["backup_csr"] = backup_local(module, csr_path)
        if rewrite_key:
            atomic_write(module, key_path, crypto.dump_private_key(key, "pkcs8_pem", passphrase), PRIVATE_MODE)
        if new_csr:
            atomic_write(module, csr_path, csr_pem, PUBLIC_MODE)
    result["changed"] = _settle_file_args(module, key_path, key_data is not None, PRIVATE_MODE, result["changed"])
    result["changed"] = _settle_file_args(module, csr_path, csr_data is not None, PUBLIC_MODE, result["changed"])

    after_key = key_facts(key)
    after_key.update(format="pkcs8_pem" if rewrite_key else container.format,
                     encrypted=bool(passphrase) if rewrite_key else container.encrypted)
    after_csr = crypto.describe_csr(csr)
    if module.check_mode and new_key:
        # A key generated only to predict the outcome is thrown away: do not report its fingerprint.
        after_key["public_key_fingerprint"] = None
        after_csr["public_key_fingerprint"] = None
        after_csr["public_key"]["public_key_fingerprint"] = None
    result["privatekey"] = after_key
    result["csr"] = after_csr
    if params.get("return_content"):
        result["csr_pem"] = csr_pem.decode("ascii")
    if module._diff:
        result["diff"] = {
            "before": {"privatekey": before_key, "csr": _csr_diff_facts(before_csr)},
            "after": {"privatekey": after_key, "csr": _csr_diff_facts(after_csr)},
        }
    if renewal is not None:
        result["renewal"] = renewal
    if warnings:
        result["warnings"] = warnings
    return result


def _requested_names(params, csr_data):
    """(subject pairs, SANs, renewal facts, expiring certificate): from the name options (no renewal), or from the
    expiring certificate given in renew_certificate_path."""
    cert_path = params.get("renew_certificate_path")
    if not cert_path:
        return subject_from_params(params), crypto.normalize_sans(params.get("subject_alt_name")), None, None
    source = "renew_certificate_path %s" % cert_path
    certificate = crypto.load_certificates(read_required(cert_path, "renew_certificate_path"), source)[0]
    earlier = None
    if csr_data is not None:
        try:
            earlier = crypto.load_csr(csr_data, "csr_path")
        except crypto.CryptoError:
            pass  # an unreadable CSR is refused (or replaced) below, as without renewal
    subject, sans, renewal = crypto.renewal_request(certificate, params.get("renew_attribute"), params.get("renew_value"),
                                                    existing_csr=earlier)
    return subject, sans, renewal, certificate


def _settle_file_args(module, path, existed, default_mode, changed):
    """Apply owner/group/mode; in check mode a file that does not exist yet has nothing to compare."""
    if module.check_mode and not existed:
        return changed
    return apply_file_args(module, path, default_mode, changed)


def _csr_diff_facts(facts):
    if facts is None:
        return None
    return {name: facts[name] for name in ("subject_string", "subject_alt_name", "public_key_fingerprint", "signature_algorithm")}


# -------------------------------------------------------------- mc_keystore

def ensure_keystore(module):
    """Write the key (and certificate/chain for PKCS#12) from src_path to dest_path in the asked format."""
    params = module.params
    src_path, dest_path = params["src_path"], params["dest_path"]
    fmt = params["format"]
    passphrase = params.get("passphrase") or None
    src_passphrase = params.get("src_passphrase") or None
    encryption = params["pkcs12_encryption"]

    if fmt == "pkcs12" and not passphrase:
        raise InputError("passphrase is required for format=pkcs12 (Mastercard's loaders expect a protected keystore)")
    if fmt in ("pkcs1_pem", "pkcs8_der") and passphrase:
        raise InputError("passphrase can protect format=pkcs8_pem or pkcs12 only; drop it for format=%s" % fmt)
    if fmt != "pkcs12" and (params.get("certificate_path") or params.get("chain_path")):
        raise InputError("certificate_path and chain_path go into a keystore; use them with format=pkcs12")
    check_parent_dir(dest_path, "dest_path")
    absent = [option for option in ("src_path", "certificate_path", "chain_path")
              if params.get(option) and not os.path.exists(params[option])]
    if absent and module.check_mode:
        # An earlier task of the same check run would have created it (mc_csr, a copy, a download): predict
        # the write, as a real run would do it, instead of failing the dry run.
        return {"changed": True, "dest_path": dest_path, "format": fmt,
                "warnings": ["%s %s does not exist yet; check mode predicts that dest_path would be written once "
                             "it does" % (option, params[option]) for option in absent]}

    source = _read_source(params, src_path, dest_path, src_passphrase, passphrase)
    key = source.key
    crypto.check_key_strength(key, "the key in src_path %s" % src_path)
    certificate, chain = source.certificate, list(source.chain)
    if params.get("certificate_path"):
        certificate = crypto.load_certificate(read_required(params["certificate_path"], "certificate_path"),
                                              "certificate_path %s" % params["certificate_path"])
    if params.get("chain_path"):
        chain = crypto.load_certificates(read_required(params["chain_path"], "chain_path"),
                                         "chain_path %s" % params["chain_path"])
    if certificate is not None and not crypto.key_matches_certificate(key, certificate):
        raise InputError("certificate_path %s is not the certificate of the key in src_path %s (public keys differ)"
                         % (params.get("certificate_path"), src_path))
    friendly_name = params.get("friendly_name") or source.friendly_name
    if fmt != "pkcs12":
        certificate, chain, friendly_name = None, [], None
    # Packed anyway (a keystore may be made ahead of time, or for a test), but said: a client would fail with it.
    warnings = crypto.client_certificate_problems([certificate] + chain, allow_self_signed=True) \
        if certificate is not None else []

    wanted = {
        "format": fmt,
        "encrypted": fmt == "pkcs12" or bool(passphrase),
        "public_key_fingerprint": crypto.public_key_fingerprint(key),
        "certificate_fingerprint": crypto.certificate_fingerprint(certificate) if certificate is not None else None,
        "chain_fingerprints": [crypto.certificate_fingerprint(cert) for cert in chain],
        "friendly_name": friendly_name,
        "pkcs12_encryption": encryption if fmt == "pkcs12" else None,
    }
    before = _existing_keystore_facts(params, dest_path, passphrase, src_passphrase, wanted["public_key_fingerprint"])
    changed = before != wanted

    result = {"changed": changed, "dest_path": dest_path, "format": fmt}
    if changed and not module.check_mode:
        if fmt == "pkcs12":
            data = crypto.dump_pkcs12(key, certificate, chain, passphrase, friendly_name, encryption)
        else:
            data = crypto.dump_private_key(key, fmt, passphrase)
        if params.get("backup"):
            result["backup_file"] = backup_local(module, dest_path, private=True)
        atomic_write(module, dest_path, data, PRIVATE_MODE)
    result["changed"] = _settle_file_args(module, dest_path, before is not None, PRIVATE_MODE, result["changed"])

    result["private_key"] = crypto.describe_key(key)
    result["keystore"] = wanted
    if certificate is not None:
        result["certificate"] = crypto.certificate_info(certificate)
    if module._diff:
        result["diff"] = {"before": before, "after": wanted}
    if warnings:
        result["warnings"] = warnings
    return result


def _same_file(first, second):
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.abspath(first) == os.path.abspath(second)


def _read_source(params, src_path, dest_path, src_passphrase, passphrase):
    data = read_required(src_path, "src_path")
    try:
        return crypto.read_key_container(data, src_passphrase, "src_path %s" % src_path, "src_passphrase")
    except crypto.CryptoError:
        # In-place passphrase change already done: the file now opens with the new passphrase.
        if passphrase and _same_file(src_path, dest_path):
            try:
                return crypto.read_key_container(data, passphrase, "src_path %s" % src_path, "passphrase")
            except crypto.CryptoError:
                pass
        raise


def _existing_keystore_facts(params, dest_path, passphrase, src_passphrase, wanted_key_fingerprint):
    """Facts about what dest_path holds now (None when absent); refuses to overwrite another key unless force."""
    data = read_if_exists(dest_path, "dest_path")
    if data is None:
        return None
    box, opened_with_new, error = None, False, None
    for secret in (passphrase, src_passphrase):
        try:
            box = crypto.read_key_container(data, secret, "dest_path %s" % dest_path, "passphrase")
            opened_with_new = secret == passphrase
            break
        except crypto.CryptoError as exc:
            error = exc
    if box is None:
        if params.get("force"):
            return {"format": "unreadable"}
        raise InputError("dest_path %s exists but cannot be opened (%s); set force=true to overwrite it "
                         "(backup=true keeps a copy)" % (dest_path, error))
    existing_fingerprint = crypto.public_key_fingerprint(box.key)
    if existing_fingerprint != wanted_key_fingerprint and not params.get("force"):
        raise InputError("dest_path %s holds a different private key (public key sha256 %s); set force=true to "
                         "overwrite it (backup=true keeps a copy)" % (dest_path, existing_fingerprint))
    return {
        "format": box.format,
        # A keystore that opens only with the old passphrase still needs rewriting.
        "encrypted": box.encrypted if opened_with_new else "old passphrase",
        "public_key_fingerprint": existing_fingerprint,
        "certificate_fingerprint": crypto.certificate_fingerprint(box.certificate) if box.certificate is not None else None,
        "chain_fingerprints": [crypto.certificate_fingerprint(cert) for cert in box.chain],
        "friendly_name": box.friendly_name,
        "pkcs12_encryption": box.pkcs12_encryption,
    }
