# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module that calls the Mastercard Developers API.

Matches plugins/module_utils/devapi.py connection_argument_spec(); change both together.
"""


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  api_url:
    description:
      - Base URL of the Mastercard Developers API.
      - Only C(https://) URLs are accepted; a C(http://) URL is refused.
      - The default is the base URL a third-party client uses; Mastercard's public pages do not show one.
      - If not set, the value of the E(MC_DEVAPI_URL) environment variable is used.
    type: str
    default: https://apiedge.mastercard.com/developers
  consumer_key:
    description:
      - Consumer key of the account's Developers API key (Account page, Developers API Keys).
      - Required; if not set, the value of the E(MC_DEVAPI_CONSUMER_KEY) environment variable is used.
    type: str
  signing_key_path:
    description:
      - Path to the signing key of the Developers API key, as a PKCS#12 keystore (the C(.p12) the portal
        downloads) or a PEM private key (PKCS#1 or PKCS#8).
      - Mutually exclusive with O(signing_key_content).
      - If neither O(signing_key_path) nor O(signing_key_content) is set, the E(MC_DEVAPI_SIGNING_KEY_PATH) or
        E(MC_DEVAPI_SIGNING_KEY_CONTENT) environment variable is used (setting both is an error).
      - One of them is required.
    type: path
  signing_key_content:
    description:
      - The signing key of the Developers API key as PEM text, or a PKCS#12 keystore encoded in base64.
      - Mutually exclusive with O(signing_key_path).
      - See O(signing_key_path) for the fallback to E(MC_DEVAPI_SIGNING_KEY_CONTENT).
    type: str
  signing_key_password:
    description:
      - Password of the PKCS#12 keystore or of the encrypted PEM signing key.
      - If not set, the value of the E(MC_DEVAPI_SIGNING_KEY_PASSWORD) environment variable is used, else the
        content of the file E(MC_DEVAPI_SIGNING_KEY_PASSWORD_FILE) names (without a final newline). The AWX
        credential type of this collection injects that file, because C(ansible-runner) writes the job's
        environment in plain text to its artifacts.
    type: str
  ca_path:
    description:
      - PEM file of CA certificates used to verify the API server certificate, instead of the system trust store.
      - If not set, the value of the E(MC_DEVAPI_CA_PATH) environment variable is used.
    type: path
  validate_certs:
    description:
      - Whether to verify the API server certificate.
      - Setting it to V(false) is insecure and produces a warning; prefer O(ca_path) for a private CA.
      - If not set, the value of the E(MC_DEVAPI_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for a connection and for each answer of the API.
      - If not set, the value of the E(MC_DEVAPI_TIMEOUT) environment variable is used.
    type: float
    default: 30
  retries:
    description:
      - How many times a call is retried after a connection error or an HTTP 408, 429, 500, 502, 503 or 504 answer,
        with exponential backoff and jitter, honouring C(Retry-After). No retry of a call starts later than two minutes
        after its first attempt.
      - Reads, revokes and activations are resent. A create is never resent blindly; when its answer is lost,
        the module looks for a credential with the alias it sent and adopts it, and creates again only if there is none.
      - If not set, the value of the E(MC_DEVAPI_RETRIES) environment variable is used.
    type: int
    default: 3
  contract_path:
    description:
      - A YAML or JSON file of corrections to the Developers API contract the client follows (paths, methods, query
        parameters, body and record fields, values, reason codes), merged over the collection's defaults; give only
        the entries that differ. The sections and entries, each with the evidence behind it, are listed in
        C(docs/devapi-contract.md).
      - An unknown section, entry or field, or a value of the wrong shape, is refused naming it before any call.
        Every API module returns the overridden entries in C(contract_overrides).
      - If not set, the value of the E(MC_DEVAPI_CONTRACT) environment variable is used.
    type: path
notes:
  - >-
    Environment variables are read on the host where the module runs, not on the controller. Run API tasks
    on C(localhost) (C(delegate_to: localhost) or C(connection: local)) or in the execution environment, where an
    AWX or Automation Controller credential type can inject the E(MC_DEVAPI_*) variables.
  - Use C(module_defaults) with the action group C(group/mcdev.credentials.api) to set the connection options once per play.
  - Every call is signed with OAuth 1.0a (RSA-SHA256 with a body hash) by Mastercard's C(mastercard-oauth1-signer) library.
requirements:
  - requests
  - cryptography
  - mastercard-oauth1-signer
'''
