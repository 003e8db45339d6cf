#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mc_csr
short_description: Private key and CSR for a Mastercard credential, in one task
version_added: 0.1.0
description:
  - Creates a private key (RSA 2048/3072/4096 or EC P-256/P-384) and a PKCS#10 certificate signing request (CSR) for
    it on the managed host, ready to be uploaded to Mastercard Developers as an mTLS client certificate or an
    OAuth 1.0a / OAuth 2.0 signing key.
  - An existing key is kept when it matches O(type), O(size) and O(curve); the O(regenerate) ladder decides what
    happens to one that does not. A key is never replaced without the options asking for it.
  - The CSR is rewritten whenever its subject, subject alternative names or public key differ from what is asked.
  - The O(profile) checks Mastercard's rules for the credential kind before anything is written.
  - The key is written as PKCS#8 PEM, encrypted when O(privatekey_passphrase) is set. Use
    M(mcdev.credentials.mc_keystore) to convert it to PKCS#12, PKCS#1 or DER.
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
  privatekey_path:
    description: Where the private key is (or will be) stored.
    type: path
    required: true
  csr_path:
    description: Where the CSR is (or will be) stored, as PEM.
    type: path
    required: true
  type:
    description: Key algorithm.
    type: str
    choices: [rsa, ec]
    default: rsa
  size:
    description: RSA key size in bits. Ignored for EC keys.
    type: int
    choices: [2048, 3072, 4096]
    default: 2048
  curve:
    description: EC curve. Ignored for RSA keys. Mastercard's OAuth 2.0 accepts only V(secp256r1).
    type: str
    choices: [secp256r1, secp384r1]
    default: secp256r1
  privatekey_passphrase:
    description:
      - Passphrase that protects the private key file. Also used to open an existing key.
      - When it is set on a key stored without one (or removed from an encrypted key), the same key is rewritten
        with the new protection; the key itself is kept.
    type: str
  subject:
    description:
      - 'The subject as a dictionary or a list of single-entry dictionaries, for example V([{"CN": "api-client"}, {"O": "Example"}]).'
      - Attributes keep the given order in the CSR. Supported names are V(CN), V(O), V(OU), V(L), V(ST), V(C) and
        V(emailAddress) (long names such as V(commonName) work too).
      - Combined with the individual name options below, which are appended in the order CN, O, OU, L, ST, C,
        emailAddress. An attribute may not be set in both places.
    type: raw
  common_name:
    description: Subject common name (CN). Required, here or in O(subject).
    type: str
    aliases: [CN, commonName]
  organization_name:
    description: Subject organization (O).
    type: str
    aliases: [O, organizationName]
  organizational_unit_name:
    description: Subject organizational unit (OU).
    type: str
    aliases: [OU, organizationalUnitName]
  locality_name:
    description: Subject locality (L).
    type: str
    aliases: [L, localityName]
  state_or_province_name:
    description: Subject state or province (ST).
    type: str
    aliases: [ST, stateOrProvinceName]
  country_name:
    description: Subject country (C), two letters.
    type: str
    aliases: [C, countryName]
  email_address:
    description: Subject e-mail address.
    type: str
    aliases: [emailAddress]
  subject_alt_name:
    description: Subject alternative names, each with a type prefix, e.g. V(DNS:api.example.com), V(IP:10.0.0.1),
      V(email:ops@example.com), V(URI:https://example.com).
    type: list
    elements: str
  renew_certificate_path:
    description:
      - The expiring certificate (PEM or DER; the first certificate of a PEM file is used) to renew in the Key
        Management Portal (KMP) or by uploading the issued certificate with M(mcdev.credentials.mc_certificate).
      - The CSR gets the certificate's subject DN with O(renew_attribute) changed, and the certificate's subject
        alternative names. Mastercard refuses a renewed certificate whose DN is the expiring one's, so a DN that
        would not change is refused before anything is written.
      - Cannot be combined with O(subject), the individual name options or O(subject_alt_name).
      - The expiring certificate's serial number, which the KMP renewal form asks for, is in RV(renewal).
    type: path
  renew_attribute:
    description:
      - The subject attribute that changes when renewing from O(renew_certificate_path); the others keep their
        values and order. One of V(CN), V(O), V(OU), V(L), V(ST), V(C), V(emailAddress).
      - Without O(renew_value) its epoch-seconds suffix is moved to now (added when there is none), as in the
        portal's example V(example-1682563200) to V(example-1682566800). A CSR already at O(csr_path) made for
        this renewal keeps its value, so running again changes nothing.
    type: str
    default: CN
  renew_value:
    description: The new value of O(renew_attribute), instead of a new epoch suffix.
    type: str
  profile:
    description:
      - Mastercard rules to check before writing. RSA keys below 2048 bits are refused by every profile.
      - V(oauth1) accepts RSA keys only.
      - V(oauth2) accepts RSA keys or EC V(secp256r1) keys.
      - V(mtls_sandbox) needs a common name of the form C(<unique>-Client-MTF-<company id or 000000>), at most
        64 characters and not a URL.
      - V(mtls_production) needs a common name of at most 64 characters that is not a URL.
      - V(custom) checks only the key strength and that a common name is set.
    type: str
    choices: [custom, oauth1, oauth2, mtls_sandbox, mtls_production]
    default: custom
  regenerate:
    description:
      - What to do with a private key that already exists at O(privatekey_path).
      - V(never) keeps any readable key, even one that does not match the options (with a warning).
      - V(fail) keeps a matching key and fails on one that differs from O(type)/O(size)/O(curve).
      - V(partial_idempotence) replaces a key that differs from O(type)/O(size)/O(curve).
      - V(full_idempotence) also replaces a key that cannot be read (corrupt, or the passphrase does not open it),
        and a CSR file that cannot be read.
      - V(always) creates a new key and CSR on every run.
      - Every refusal names the value that would allow the change.
    type: str
    choices: [never, fail, partial_idempotence, full_idempotence, always]
    default: fail
  force:
    description: Same as O(regenerate=always).
    type: bool
    default: false
  return_content:
    description: Return the CSR in RV(csr_pem). The private key is never returned.
    type: bool
    default: false
seealso:
  - module: mcdev.credentials.mc_keystore
"""

EXAMPLES = r"""
- name: OAuth 1.0a signing key and CSR
  mcdev.credentials.mc_csr:
    privatekey_path: /etc/mcdev/example/key.pem
    csr_path: /etc/mcdev/example/request.csr
    profile: oauth1
    common_name: example-1682563200

- name: OAuth 2.0 key on P-256 with an encrypted key file
  mcdev.credentials.mc_csr:
    privatekey_path: /etc/mcdev/example/oauth2-key.pem
    csr_path: /etc/mcdev/example/oauth2.csr
    type: ec
    curve: secp256r1
    privatekey_passphrase: "{{ vault_key_passphrase }}"
    profile: oauth2
    common_name: example-oauth2-1682563200

- name: Sandbox mTLS client certificate request, subject in a fixed order
  mcdev.credentials.mc_csr:
    privatekey_path: /etc/mcdev/example/mtls-key.pem
    csr_path: /etc/mcdev/example/mtls.csr
    profile: mtls_sandbox
    subject:
      - CN: 1682563200-Client-MTF-000000
      - O: Example Company
      - OU: Payments
      - C: US
    subject_alt_name:
      - DNS:api.example.com
  register: mtls_request

- name: Replace a key that is RSA 2048 with an RSA 4096 one, keeping a copy of the old files
  mcdev.credentials.mc_csr:
    privatekey_path: /etc/mcdev/example/key.pem
    csr_path: /etc/mcdev/example/request.csr
    size: 4096
    regenerate: partial_idempotence
    backup: true
    common_name: example-1682566800

- name: Renew an mTLS certificate that expires soon (KMP renewal), with a new key
  mcdev.credentials.mc_csr:
    privatekey_path: /etc/mcdev/example/mtls-key-next.pem
    csr_path: /etc/mcdev/example/mtls-renewal.csr
    renew_certificate_path: /etc/mcdev/example/cert.pem
    profile: mtls_production
  register: renewal_request

- name: Show what to enter in the KMP renewal form
  ansible.builtin.debug:
    msg: >-
      Expiring certificate serial number {{ renewal_request.renewal.certificate_serial_number }};
      the new DN is {{ renewal_request.csr.subject_string }}
"""

RETURN = r"""
privatekey_path:
  description: Path of the private key.
  returned: always
  type: str
csr_path:
  description: Path of the CSR.
  returned: always
  type: str
privatekey:
  description: Facts about the private key (never its bytes).
  returned: always
  type: dict
  contains:
    type:
      description: V(rsa) or V(ec).
      type: str
    size:
      description: Key size in bits.
      type: int
    curve:
      description: EC curve name, or null for RSA.
      type: str
    public_key_fingerprint:
      description: Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo; null in check mode for a key not yet created.
      type: str
      sample: 5c9e1f0e4a1d7b2c3f8e6a9d0b1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d
    format:
      description: How the key file is stored.
      type: str
      sample: pkcs8_pem
    encrypted:
      description: Whether the key file is protected by a passphrase.
      type: bool
csr:
  description: Facts about the CSR.
  returned: always
  type: dict
  contains:
    subject:
      description: Subject attributes in CSR order, as [name, value] pairs.
      type: list
      elements: list
      sample: [[CN, example-1682563200], [O, Example]]
    subject_string:
      description: The subject as an RFC 4514 string.
      type: str
      sample: O=Example,CN=example-1682563200
    common_name:
      description: The subject common name.
      type: str
    subject_alt_name:
      description: Subject alternative names with type prefixes.
      type: list
      elements: str
    signature_algorithm:
      description: Signature algorithm of the CSR.
      type: str
      sample: sha256WithRSAEncryption
    signature_valid:
      description: Whether the CSR's self-signature verifies.
      type: bool
    public_key:
      description: Facts about the CSR's public key (type, size, curve, public_key_fingerprint).
      type: dict
    public_key_fingerprint:
      description: Lowercase hex SHA-256 of the CSR's DER SubjectPublicKeyInfo.
      type: str
csr_pem:
  description: The CSR in PEM form.
  returned: when O(return_content=true)
  type: str
renewal:
  description: What the renewal CSR was made from.
  returned: when O(renew_certificate_path) is set
  type: dict
  contains:
    certificate_subject:
      description: The expiring certificate's subject DN, RFC 4514.
      type: str
      sample: CN=example-1682563200,O=Example Company
    certificate_serial_number:
      description: The expiring certificate's serial number in upper-case hex, as the KMP renewal form asks for it.
      type: str
      sample: 5A3F0C1B9E
    certificate_not_after:
      description: When the expiring certificate expires (UTC, ISO 8601).
      type: str
      sample: "2027-01-31T12:00:00Z"
    attribute:
      description: The subject attribute that changed.
      type: str
      sample: CN
    from:
      description: Its value in the expiring certificate (null when the certificate had none).
      type: str
      sample: example-1682563200
    to:
      description: Its value in the CSR.
      type: str
      sample: example-1682566800
backup_privatekey:
  description: Path of the copy of the replaced private key.
  returned: when O(backup=true) and the key file was rewritten
  type: str
backup_csr:
  description: Path of the copy of the replaced CSR.
  returned: when O(backup=true) and the CSR was rewritten
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, fail_from, fail_missing_library, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.common import REGENERATE_CHOICES
from ansible_collections.mcdev.credentials.plugins.module_utils.keyfiles import ensure_csr


# Names that renew_certificate_path takes from the expiring certificate instead.
RENEWAL_EXCLUDES = ("subject", "common_name", "organization_name", "organizational_unit_name", "locality_name",
                    "state_or_province_name", "country_name", "email_address", "subject_alt_name")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            privatekey_path=dict(type="path", required=True),
            csr_path=dict(type="path", required=True),
            type=dict(type="str", choices=["rsa", "ec"], default="rsa"),
            size=dict(type="int", choices=list(crypto.RSA_SIZES), default=2048),
            curve=dict(type="str", choices=list(crypto.EC_CURVES), default="secp256r1"),
            privatekey_passphrase=dict(type="str", no_log=True),
            subject=dict(type="raw"),
            common_name=dict(type="str", aliases=["CN", "commonName"]),
            organization_name=dict(type="str", aliases=["O", "organizationName"]),
            organizational_unit_name=dict(type="str", aliases=["OU", "organizationalUnitName"]),
            locality_name=dict(type="str", aliases=["L", "localityName"]),
            state_or_province_name=dict(type="str", aliases=["ST", "stateOrProvinceName"]),
            country_name=dict(type="str", aliases=["C", "countryName"]),
            email_address=dict(type="str", aliases=["emailAddress"]),
            subject_alt_name=dict(type="list", elements="str"),
            renew_certificate_path=dict(type="path"),
            renew_attribute=dict(type="str", default="CN"),
            renew_value=dict(type="str"),
            profile=dict(type="str", choices=list(crypto.PROFILES), default="custom"),
            regenerate=dict(type="str", choices=REGENERATE_CHOICES, default="fail"),
            force=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
            return_content=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("renew_certificate_path", name) for name in RENEWAL_EXCLUDES],
        required_by={"renew_value": "renew_certificate_path"},
        supports_check_mode=True,
        add_file_common_args=True,
    )
    with unforeseen_errors(module, ("privatekey_path", "csr_path")):
        if not crypto.HAS_CRYPTOGRAPHY:
            fail_missing_library(module, "cryptography", crypto.CRYPTOGRAPHY_IMPORT_ERROR)
        try:
            result = ensure_csr(module)
        except HANDLED as error:
            fail_from(module, error, privatekey_path=module.params["privatekey_path"], csr_path=module.params["csr_path"])
        module.exit_json(**result)


if __name__ == "__main__":
    main()
