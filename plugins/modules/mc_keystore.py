#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mc_keystore
short_description: Convert a Mastercard signing key or client key between PKCS#12, PKCS#1, PKCS#8 and DER
version_added: 0.1.0
description:
  - Reads a private key from O(src_path) (PKCS#12, PKCS#1 PEM, PKCS#8 PEM plain or encrypted, or DER) and writes it to
    O(dest_path) in O(format). For PKCS#12 the certificate (and chain) from the source keystore, or from
    O(certificate_path) and O(chain_path), go in with the key.
  - Changes the passphrase of a keystore or key file, also in place (O(src_path) equal to O(dest_path)).
  - Writes PKCS#12 with modern encryption (AES-256 and PBKDF2, SHA-256 MAC) or, with O(pkcs12_encryption=legacy), the
    PBE-SHA1-3DES encryption and SHA-1 MAC that Java 8 and older Windows versions read.
  - Idempotent by content - the key material, certificate, chain, friendly name, format, encryption profile and
    that O(passphrase) opens the file - not by bytes (encrypted files differ on every write).
  - Never overwrites a file that holds a different key, or one it cannot open, unless O(force=true).
author:
  - mcdev.credentials maintainers (@mcdev)
requirements:
  - cryptography >= 42.0 on the managed host
extends_documentation_fragment:
  - ansible.builtin.files
  - mcdev.credentials.files
  - mcdev.credentials.attributes
  - mcdev.credentials.attributes.safe_file_operations
  - mcdev.credentials.attributes.idempotent
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
  safe_file_operations:
    support: full
options:
  src_path:
    description: The key to read - PKCS#12 (.p12/.pfx), PKCS#1 or PKCS#8 PEM (encrypted or not), or PKCS#1/PKCS#8 DER.
    type: path
    required: true
  src_passphrase:
    description: Passphrase that opens O(src_path).
    type: str
  certificate_path:
    description:
      - PEM or DER certificate for the key, put in the PKCS#12 keystore. Overrides the certificate in a PKCS#12
        O(src_path). It must belong to the key.
      - Only with O(format=pkcs12).
    type: path
  chain_path:
    description:
      - PEM file with the issuing CA certificates, put in the PKCS#12 keystore after the certificate. Overrides the
        chain in a PKCS#12 O(src_path).
      - Only with O(format=pkcs12).
    type: path
  dest_path:
    description: Where to write the converted key or keystore.
    type: path
    required: true
  format:
    description:
      - V(pkcs12) a password-protected PKCS#12 keystore with the key and, when known, its certificate and chain.
      - V(pkcs1_pem) C(BEGIN RSA PRIVATE KEY) (for EC keys the equivalent C(BEGIN EC PRIVATE KEY)); no passphrase.
      - V(pkcs8_pem) C(BEGIN PRIVATE KEY), or C(BEGIN ENCRYPTED PRIVATE KEY) with O(passphrase).
      - V(pkcs8_der) binary PKCS#8; no passphrase.
    type: str
    required: true
    choices: [pkcs12, pkcs1_pem, pkcs8_pem, pkcs8_der]
  passphrase:
    description:
      - Passphrase for O(dest_path). Required for O(format=pkcs12); optional for O(format=pkcs8_pem); not allowed
        for the other formats.
    type: str
  pkcs12_encryption:
    description: Encryption of a PKCS#12 keystore. V(legacy) only for readers that cannot open the modern one.
    type: str
    choices: [modern, legacy]
    default: modern
  friendly_name:
    description: Alias of the key in the PKCS#12 keystore (Mastercard's samples use V(keyalias)). Defaults to the alias
      in a PKCS#12 O(src_path).
    type: str
  force:
    description: Overwrite O(dest_path) even when it holds a different key or cannot be opened with O(passphrase).
    type: bool
    default: false
seealso:
  - module: mcdev.credentials.mc_csr
"""

EXAMPLES = r"""
- name: PKCS#12 from the portal to PKCS#8 PEM for an application that reads PEM
  mcdev.credentials.mc_keystore:
    src_path: /etc/mcdev/example/key.p12
    src_passphrase: "{{ vault_keystore_password }}"
    dest_path: /etc/mcdev/example/key-pkcs8.pem
    format: pkcs8_pem

- name: Key and issued certificate into a PKCS#12 keystore that Java 8 reads
  mcdev.credentials.mc_keystore:
    src_path: /etc/mcdev/example/key-pkcs8.pem
    certificate_path: /etc/mcdev/example/cert.pem
    dest_path: /etc/mcdev/example/legacy.p12
    format: pkcs12
    pkcs12_encryption: legacy
    friendly_name: keyalias
    passphrase: "{{ vault_keystore_password }}"

- name: Change the keystore password in place
  mcdev.credentials.mc_keystore:
    src_path: /etc/mcdev/example/key.p12
    src_passphrase: "{{ vault_keystore_password }}"
    dest_path: /etc/mcdev/example/key.p12
    format: pkcs12
    passphrase: "{{ vault_new_keystore_password }}"
    backup: true
"""

RETURN = r"""
dest_path:
  description: Path of the written file.
  returned: always
  type: str
format:
  description: Format of O(dest_path).
  returned: always
  type: str
private_key:
  description: Facts about the key (type, size, curve, public_key_fingerprint); never its bytes.
  returned: always
  type: dict
  sample: {type: rsa, size: 2048, curve: null, public_key_fingerprint: 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0}
keystore:
  description: What O(dest_path) holds after the task.
  returned: always
  type: dict
  contains:
    format:
      description: The file format.
      type: str
    encrypted:
      description: Whether the file is protected by a passphrase.
      type: bool
    public_key_fingerprint:
      description: Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo.
      type: str
    certificate_fingerprint:
      description: Lowercase hex SHA-256 of the DER certificate in the keystore, or null.
      type: str
    chain_fingerprints:
      description: Fingerprints of the chain certificates in the keystore.
      type: list
      elements: str
    friendly_name:
      description: Alias of the key in the keystore.
      type: str
    pkcs12_encryption:
      description: V(modern) or V(legacy) for PKCS#12, else null.
      type: str
certificate:
  description: Facts about the certificate in the keystore (subject, issuer, serial_number, not_before, not_after,
    days_left, fingerprint, public_key_fingerprint, subject_alt_name).
  returned: when the keystore holds a certificate
  type: dict
backup_file:
  description: Path of the copy of the replaced file.
  returned: when O(backup=true) and the file was rewritten
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, fail_from, fail_missing_library, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.keyfiles import ensure_keystore


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src_path=dict(type="path", required=True),
            src_passphrase=dict(type="str", no_log=True),
            certificate_path=dict(type="path"),
            chain_path=dict(type="path"),
            dest_path=dict(type="path", required=True),
            format=dict(type="str", required=True, choices=list(crypto.KEYSTORE_FORMATS)),
            passphrase=dict(type="str", no_log=True),
            pkcs12_encryption=dict(type="str", choices=list(crypto.PKCS12_ENCRYPTIONS), default="modern"),
            friendly_name=dict(type="str"),
            force=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
        add_file_common_args=True,
    )
    with unforeseen_errors(module, ("src_path", "certificate_path", "chain_path", "dest_path")):
        if not crypto.HAS_CRYPTOGRAPHY:
            fail_missing_library(module, "cryptography", crypto.CRYPTOGRAPHY_IMPORT_ERROR)
        try:
            result = ensure_keystore(module)
        except HANDLED as error:
            fail_from(module, error, dest_path=module.params["dest_path"])
        module.exit_json(**result)


if __name__ == "__main__":
    main()
