#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_oauth_key
short_description: Add, rotate and renew OAuth 1.0a and OAuth 2.0 signing keys of a Mastercard Developers project
version_added: 0.1.0
description:
  - Adds an OAuth signing key to a project's sandbox or production credentials by any of the portal's three methods,
    returns its consumer key, client id and key id (kid), and replaces it before it expires.
  - "B(Generate) (neither O(csr_path) nor O(csr_content) given): a new private key is made on the host that runs the
    module and stored in O(key_store) B(before) the API is called; only a CSR leaves the host. A run that crashed
    after the key was stored resumes with that key and never creates a duplicate."
  - B(Use an existing private key) by uploading its CSR (O(csr_path)) or pasting it (O(csr_content)).
  - OAuth 1.0a keys must be RSA; OAuth 2.0 keys may be RSA (2048 bits or more) or EC P-256.
  - A key is identified by O(project_id), O(environment), O(oauth_version) and O(alias); a run with the same options
    changes nothing (one list call).
  - A project holds at most three active OAuth 2.0 keys. The module refuses, before any change, to add a fourth and
    lists the active ones with how to revoke one.
  - With O(renew_before), a key inside its renewal window is rotated (a new key next to the old one, under O(new_alias)
    or V(<alias>-<epoch>)); with O(reuse_key=true) an OAuth 1.0a key is renewed instead (same key, new certificate;
    the module warns that this is less secure).
  - O(upgrade_to_oauth2=true) upgrades the project to OAuth 2.0 once; OAuth 1.0a keeps working.
  - Exports a generated key in the formats asked (O(export)).
  - "API calls per run: one credential list when nothing changes; a create adds one project read and one create
    (and one certificate read for a PKCS#12 export); O(upgrade_to_oauth2) adds a project read."
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
    details: Reads the project and its credentials and predicts the change, including the fourth-key refusal;
      generates no key, writes no file and calls no mutating endpoint.
  diff_mode:
    support: full
    details: Shows id, alias, status, kid, consumer key, fingerprints, serial and expiry before and after.
  idempotent:
    support: full
  action_group:
    description: Use C(group/mcdev.credentials.api) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - mcdev.credentials.api
options:
  project_id:
    description: The Mastercard Developers project. It must use OAuth authentication.
    type: str
    required: true
  environment:
    description: Which credentials screen the key belongs to.
    type: str
    default: sandbox
    choices: [sandbox, production]
  oauth_version:
    description:
      - V(1.0a) signs each request with the key (RSA only); V(2.0) exchanges a signed JWT for a token (RSA or EC P-256).
      - An OAuth 2.0 key needs a project upgraded to OAuth 2.0 (see O(upgrade_to_oauth2)).
    type: str
    required: true
    choices: ['1.0a', '2.0']
  alias:
    description:
      - The key alias; with O(project_id), O(environment) and O(oauth_version) it identifies the key.
      - Letters, digits, V(.), V(_) and V(-), at most 64 characters.
    type: str
    required: true
  new_alias:
    description: Alias of the replacement made by a rotation. Default V(<alias>-<epoch seconds>).
    type: str
  csr_path:
    description: Add the key of this CSR file (PEM or DER PKCS#10). The module never sees the private key.
    type: path
  csr_content:
    description: Add the key of this pasted CSR (PEM).
    type: str
  key_store:
    description:
      - Directory where generated private keys are kept, one file per alias
        (V(<key_store>/<project_id>/<environment>/<alias>.key.pem), mode C(0600)), encrypted with O(keystore_password)
        when it is set.
      - Required for the generate method.
    type: path
  key_type:
    description: Type of a generated key. OAuth 1.0a needs V(rsa).
    type: str
    default: rsa
    choices: [rsa, ec]
  key_size:
    description: Size of a generated RSA key.
    type: int
    default: 2048
    choices: [2048, 3072, 4096]
  curve:
    description: Curve of a generated EC key; OAuth 2.0 accepts V(secp256r1) only.
    type: str
    default: secp256r1
    choices: [secp256r1, secp384r1]
  common_name:
    description: CN of the CSR of a generated key. Default V(<alias>-<epoch>).
    type: str
  subject:
    description:
      - Further subject attributes of the CSR of a generated key, for example O=Example Bank as a dictionary.
    type: dict
  keystore_password:
    description:
      - Password of PKCS#12 exports that give no O(export[].passphrase), also used to encrypt the files in O(key_store).
      - A key store file that this password does not open is refused, never replaced.
    type: str
  export:
    description: Write the generated private key in these formats, each atomically with mode C(0600).
    type: list
    elements: dict
    default: []
    suboptions:
      format:
        description:
          - V(pkcs12) (key, certificate and chain; password protected), V(pkcs1_pem) (C(BEGIN RSA PRIVATE KEY)),
            V(pkcs8_pem) (C(BEGIN PRIVATE KEY), encrypted when a passphrase is given) or V(pkcs8_der).
        type: str
        required: true
        choices: [pkcs12, pkcs1_pem, pkcs8_pem, pkcs8_der]
      path:
        description: Where to write it.
        type: path
        required: true
      passphrase:
        description: Passphrase for V(pkcs12) (default O(keystore_password)) or V(pkcs8_pem).
        type: str
  certificate_dest:
    description: Write the certificate Mastercard issued for the key (PEM) here, mode C(0644).
    type: path
  chain_dest:
    description: Write the issuer chain (PEM) here, mode C(0644).
    type: path
  renew_before:
    description:
      - When to replace the key, as days before expiry (V(30)) or as the fraction of its lifetime left (V(0.33)).
      - Without it, an existing key is never replaced.
    type: str
  reuse_key:
    description:
      - Renew a due OAuth 1.0a key with the API's renewal (same key and consumer key, new certificate) instead of
        rotating to a new key. Less secure; the module warns. Refused for OAuth 2.0 keys.
    type: bool
    default: false
  upgrade_to_oauth2:
    description: Upgrade the project to OAuth 2.0 if it is not yet (one-time; OAuth 1.0a keys keep working).
    type: bool
    default: false
notes:
  - The private key of a generated key never leaves the host that runs the module.
  - Revoking is M(mcdev.credentials.mc_revoke)'s job; this module never revokes.
seealso:
  - module: mcdev.credentials.mc_certificate
  - module: mcdev.credentials.mc_revoke
  - module: mcdev.credentials.mc_keystore
"""

EXAMPLES = r"""
- name: Add an OAuth 2.0 key (EC P-256) generated on this host, upgrading the project first if needed
  mcdev.credentials.mc_oauth_key:
    project_id: "{{ mc_project_id }}"
    environment: sandbox
    oauth_version: "2.0"
    upgrade_to_oauth2: true
    alias: orders-api
    key_store: "{{ mc_key_store }}"
    key_type: ec
    keystore_password: "{{ mc_keystore_password }}"
    export:
      - format: pkcs12
        path: "{{ mc_out_dir }}/orders-api.p12"
      - format: pkcs8_pem
        path: "{{ mc_out_dir }}/orders-api.pem"
    renew_before: "30"
  register: mc_key

- name: Show the identifiers the application needs
  ansible.builtin.debug:
    msg: "client_id={{ mc_key.client_id }} kid={{ mc_key.kid }}"

- name: Add an OAuth 1.0a key from a CSR made elsewhere
  mcdev.credentials.mc_oauth_key:
    project_id: "{{ mc_project_id }}"
    oauth_version: "1.0a"
    alias: legacy-signer
    csr_path: "{{ mc_out_dir }}/legacy-signer.csr"

- name: An OAuth 1.0a key through the portal; the consumer key comes back through the inbox or issued
  mcdev.credentials.mc_oauth_key:
    backend: portal
    portal_dir: "{{ mc_out_dir }}/portal"
    project_id: "{{ mc_project_id }}"
    alias: orders-2027
    oauth_version: "1.0a"
    key_store: "{{ mc_key_store }}"
    keystore_password: "{{ mc_keystore_password }}"
    issued: "{{ {'consumer_key': portal_consumer_key} if portal_consumer_key is defined else omit }}"
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
consumer_key:
  description: OAuth 1.0a consumer key of the current key (RSA keys only).
  returned: success
  type: str
client_id:
  description: OAuth 2.0 client id of the project.
  returned: success
  type: str
kid:
  description: OAuth 2.0 key id of the current key.
  returned: success
  type: str
credential:
  description: The current key (the replacement after a rotation), as non-secret facts.
  returned: success
  type: dict
  sample: {id: 3f9c…, alias: orders-api, status: ACTIVE, kid: 9a0b…, expires: "2027-08-01T10:00:00Z"}
superseded:
  description: Older active keys of the same alias family, to revoke once the new one is deployed.
  returned: success
  type: list
  elements: dict
renewal_due:
  description: Whether the current key was inside its renewal window at the start of the run.
  returned: success
  type: bool
oauth2_upgraded:
  description: Whether this run upgraded (or would upgrade) the project to OAuth 2.0.
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
    argument_spec.update(credential.argument_spec("oauth"))
    constraints = devapi.connection_constraints()
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=constraints["mutually_exclusive"] + credential.mutually_exclusive("oauth"),
        required_together=constraints["required_together"],
    )
    with unforeseen_errors(module, ("csr_path", "csr_content", "key_store", "signing_key_path", "ca_path")):
        credential.run_module(module, "oauth", devapi)


if __name__ == "__main__":
    main()
