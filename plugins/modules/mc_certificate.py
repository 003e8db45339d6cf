#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_certificate
short_description: Add and rotate mTLS client certificates of a Mastercard Developers project
version_added: 0.1.0
description:
  - Adds an mTLS client certificate to a project's sandbox or production credentials by any of the portal's four
    methods, and replaces it before it expires.
  - "B(Generate) (no O(csr_path), O(csr_content), O(certificate_path) or O(certificate_content) given): a new private
    key is made on the host that runs the module and stored in O(key_store) B(before) the API is called; only a CSR
    leaves the host. A run that crashed after the key was stored resumes with that key and never creates a duplicate:
    it adopts the credential whose alias and public key match."
  - B(Upload a CSR) (O(csr_path)) or B(paste a CSR) (O(csr_content)); you keep the private key.
  - B(Upload a certificate) issued by a CA Mastercard trusts (O(certificate_path) or O(certificate_content)).
  - A certificate is identified by O(project_id), O(environment) and O(alias). A run with the same options finds it
    and changes nothing (one list call, no mutating call).
  - With O(renew_before), a certificate inside its renewal window gets a replacement B(next to it), under
    O(new_alias) or V(<alias>-<epoch>), with a subject DN that differs from the old one, as the portal requires.
    Both are returned; revoke the old one with M(mcdev.credentials.mc_revoke) once the new one is deployed.
  - Writes the issued certificate (O(certificate_dest)), its issuer chain (O(chain_dest)) and, for generated keys, a
    PKCS#12 keystore (O(keystore_dest)) and a PEM private key (O(private_key_dest)), each atomically.
  - "API calls per run: one credential list when nothing changes; a create adds one project read and one create,
    and one certificate read when a chain or keystore has to be written."
author:
  - mcdev.credentials maintainers (@mcdev)
extends_documentation_fragment:
  - mcdev.credentials.portal
  - mcdev.credentials.portal.issued
  - mcdev.credentials.connection
  - mcdev.credentials.attributes
  - mcdev.credentials.attributes.IDEMPOTENT
attributes:
  check_mode:
    support: full
    details: Lists the credentials and predicts the create or rotation; generates no key and writes no file.
  diff_mode:
    support: full
    details: Shows id, alias, status, fingerprints, serial, subject and expiry of the certificate before and after.
  idempotent:
    support: full
  action_group:
    description: Use C(group/mcdev.credentials.api) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - mcdev.credentials.api
options:
  project_id:
    description: The Mastercard Developers project. It must use mTLS authentication.
    type: str
    required: true
  environment:
    description:
      - Which credentials screen the certificate belongs to.
      - The CSR of a generated key follows the matching profile (sandbox CNs look like V(<unique>-Client-MTF-<company id>)).
    type: str
    default: sandbox
    choices: [sandbox, production]
  alias:
    description:
      - The certificate alias; with O(project_id) and O(environment) it identifies the certificate.
      - Letters, digits, V(.), V(_) and V(-), at most 64 characters.
    type: str
    required: true
  new_alias:
    description:
      - Alias of the replacement made when the certificate is due (O(renew_before)).
      - Default V(<alias>-<epoch seconds>). Either way later runs recognise the replacement as the current certificate.
    type: str
  csr_path:
    description: Add by uploading this CSR file (PEM or DER PKCS#10). The module never sees the private key.
    type: path
  csr_content:
    description: Add by pasting this CSR (PEM).
    type: str
  certificate_path:
    description:
      - Add by uploading this certificate (PEM or DER), issued by one of Mastercard's trusted CAs.
      - An expired certificate is refused before any call.
    type: path
  certificate_content:
    description: Add by uploading this certificate (PEM), issued by one of Mastercard's trusted CAs.
    type: str
  trusted_ca_path:
    description:
      - PEM file of the CA certificates you trust to issue mTLS client certificates (Mastercard's CA and the CAs it
        trusts, as your security team keeps them).
      - With O(certificate_path) or O(certificate_content), the uploaded certificate, or the last certificate of the
        chain that follows it in the same file, must be one of these CAs or be issued by one of them; otherwise the
        task fails before any API call.
      - Whatever is set, the uploaded file is checked locally first - each certificate issued by the next, the client
        certificate not self-signed, within its validity, and fit for client authentication (keyUsage
        digitalSignature, extendedKeyUsage clientAuth, not a CA).
    type: path
  key_store:
    description:
      - Directory where generated private keys are kept, one file per alias
        (V(<key_store>/<project_id>/<environment>/<alias>.key.pem), mode C(0600)), encrypted with O(keystore_password)
        when it is set.
      - Required for the generate method. Keep it; it is what makes a crashed run resumable and what a key-reuse
        renewal reads.
    type: path
  key_type:
    description: Type of a generated key.
    type: str
    default: rsa
    choices: [rsa, ec]
  key_size:
    description: Size of a generated RSA key.
    type: int
    default: 2048
    choices: [2048, 3072, 4096]
  curve:
    description: Curve of a generated EC key.
    type: str
    default: secp256r1
    choices: [secp256r1, secp384r1]
  common_name:
    description:
      - CN of the CSR of a generated key.
      - Default V(<alias>-<epoch>-Client-MTF-<company_id>) in sandbox and V(<alias>-<epoch>) in production.
      - A replacement always derives a new CN from the old certificate's CN (a new epoch suffix).
    type: str
  subject:
    description:
      - Further subject attributes of the CSR of a generated key, for example O=Example Bank and C=US as a dictionary.
    type: dict
  company_id:
    description: Company id in a default sandbox CN; V(000000) when the company is not verified.
    type: str
    default: '000000'
  keystore_password:
    description:
      - Password of the PKCS#12 O(keystore_dest), also used to encrypt the files in O(key_store).
      - A key store file that this password does not open is refused, never replaced.
    type: str
  keystore_dest:
    description: Write a PKCS#12 keystore (key, certificate, chain; friendly name = alias) here, mode C(0600).
    type: path
  private_key_dest:
    description: Write the private key here as PKCS#8 PEM, mode C(0600); encrypted when O(private_key_passphrase) is set.
    type: path
  private_key_passphrase:
    description: Passphrase for O(private_key_dest).
    type: str
  certificate_dest:
    description: Write the issued certificate (PEM) here, mode C(0644).
    type: path
  chain_dest:
    description: Write the issuer chain (PEM) here, mode C(0644).
    type: path
  renew_before:
    description:
      - When to replace the certificate, as days before expiry (V(30)) or as the fraction of its lifetime left
        (V(0.33) = the last third).
      - Without it, an existing certificate is never replaced.
      - For the CSR and certificate methods the replacement is made from the CSR or certificate given, which must
        then carry a new subject DN; when it is still the old one, the module warns and changes nothing.
    type: str
  reuse_key:
    description:
      - Make the replacement from the B(same) private key with a changed DN (the KMP renewal flow) instead of a new key.
      - Less secure than rotating to a new key; the module warns when it does it.
    type: bool
    default: false
notes:
  - The private key of a generated certificate never leaves the host that runs the module.
  - Revoking is M(mcdev.credentials.mc_revoke)'s job; this module never revokes.
seealso:
  - module: mcdev.credentials.mc_oauth_key
  - module: mcdev.credentials.mc_revoke
  - module: mcdev.credentials.mc_csr
"""

EXAMPLES = r"""
- name: Add a sandbox certificate with a key generated on this host
  mcdev.credentials.mc_certificate:
    project_id: "{{ mc_project_id }}"
    environment: sandbox
    alias: payments-client
    key_store: "{{ mc_key_store }}"
    keystore_password: "{{ mc_keystore_password }}"
    keystore_dest: "{{ mc_out_dir }}/payments-client.p12"
    certificate_dest: "{{ mc_out_dir }}/payments-client.crt"
    chain_dest: "{{ mc_out_dir }}/payments-client-chain.pem"
    renew_before: "0.33"
  register: mc_cert

- name: Add a production certificate from a CSR made elsewhere
  mcdev.credentials.mc_certificate:
    project_id: "{{ mc_project_id }}"
    environment: production
    alias: payments-prod
    csr_path: "{{ mc_out_dir }}/payments-prod.csr"
    certificate_dest: "{{ mc_out_dir }}/payments-prod.crt"

- name: Upload a certificate issued by a trusted CA
  mcdev.credentials.mc_certificate:
    project_id: "{{ mc_project_id }}"
    environment: sandbox
    alias: partner-upload
    certificate_path: "{{ mc_out_dir }}/partner.crt"

- name: Through the portal, for a project without Developers API access (resumes from what the person brings back)
  mcdev.credentials.mc_certificate:
    backend: portal
    portal_dir: "{{ mc_out_dir }}/portal"
    project_id: "{{ mc_project_id }}"
    environment: production
    alias: payments-2027
    key_store: "{{ mc_key_store }}"
    keystore_password: "{{ mc_keystore_password }}"
    keystore_dest: "{{ mc_out_dir }}/payments-2027.p12"
    issued: "{{ portal_issued | default(omit) }}"
  register: payments

- name: Say where the work order is while it waits
  ansible.builtin.debug:
    msg: "{{ payments.msg }}"
  when: payments.status | default('') == 'AWAITING_ISSUE'
"""

RETURN = r"""
status:
  description:
    - With O(backend=portal), V(AWAITING_ISSUE) while the work order waits for the person; absent otherwise.
  returned: when the run waits for a person
  type: str
  sample: AWAITING_ISSUE
work_order:
  description: Where the open work order is (C(json), C(page)) and where to drop what the portal gave (C(inbox)).
  returned: when the run waits for a person
  type: dict
  sample:
    json: /var/lib/mcdev/portal/p1/work-orders/sandbox-payments-create.json
    page: /var/lib/mcdev/portal/p1/work-orders/sandbox-payments-create.md
    inbox: /var/lib/mcdev/portal/p1/inbox/sandbox-payments.pem
in_use_days_left:
  description: Whole days until the credential in use meanwhile expires.
  returned: when the run waits for a person during a rotation
  type: int
action:
  description: What the run did (or would do in check mode).
  returned: success
  type: str
  sample: create
method:
  description: The add method used.
  returned: success
  type: str
  sample: generate
credential:
  description:
    - The current certificate (the replacement after a rotation). In check mode with a predicted create, the
      predicted alias and status only.
  returned: success
  type: dict
  contains:
    id: {description: Credential id., type: str, returned: success}
    alias: {description: Alias., type: str, returned: success}
    status: {description: "ACTIVE, INACTIVE, EXPIRED or REVOKED.", type: str, returned: success}
    fingerprint: {description: SHA-256 of the DER certificate (hex)., type: str, returned: success}
    public_key_fingerprint: {description: SHA-256 of the DER public key (hex)., type: str, returned: success}
    serial: {description: Serial number (hex)., type: str, returned: success}
    subject: {description: Subject DN (RFC 4514)., type: str, returned: success}
    expires: {description: Expiry (ISO 8601 UTC)., type: str, returned: success}
    renew_at: {description: When the renewal window opens (with O(renew_before))., type: str, returned: success}
  sample: {id: 3f9c…, alias: payments-client, status: ACTIVE, expires: "2027-08-01T10:00:00Z"}
superseded:
  description: Older active certificates of the same alias family (the one a rotation replaced), to revoke once the
    new one is deployed.
  returned: success
  type: list
  elements: dict
renewal_due:
  description: Whether the current certificate was inside its renewal window at the start of the run.
  returned: success
  type: bool
private_key_path:
  description: The key store file holding the private key (generate method).
  returned: when a key is held
  type: str
files:
  description: Files the module wrote or checked, with whether each changed.
  returned: success
  type: list
  elements: dict
contract_overrides:
  description:
    - The Developers API contract entries that the file in O(contract_path) changed, as section.entry (with the
      field for an endpoint); empty with the collection's own contract.
  returned: success
  type: list
  elements: str
  sample: [endpoints.list_credentials.path, create_fields.alias]
api_calls:
  description: Number of HTTP requests sent to the Developers API in this run (retries included).
  returned: always
  type: int
api_calls_by_op:
  description: The same, per API operation.
  returned: success
  type: dict
msg:
  description: One sentence about what happened.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import credential, devapi


def main():
    argument_spec = devapi.connection_argument_spec()
    argument_spec.update(credential.argument_spec("mtls"))
    constraints = devapi.connection_constraints()
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=constraints["mutually_exclusive"] + credential.mutually_exclusive("mtls"),
        required_together=constraints["required_together"],
    )
    with unforeseen_errors(module, ("csr_path", "csr_content", "certificate_path", "certificate_content",
                                    "trusted_ca_path", "key_store", "signing_key_path", "ca_path")):
        credential.run_module(module, "mtls", devapi)


if __name__ == "__main__":
    main()
