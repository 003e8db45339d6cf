# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Developers API connection options: one argument spec, one doc fragment (mcdev.credentials.connection).

PRIVATE to this collection: the API may change without notice.

Kept apart from devapi.py (which re-exports every name here) so that a module can accept the
connection options without importing the API client and, with it, requests and the OAuth 1.0a
signer: mc_credential_info's local-only scan never calls the API.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

# The base URL a third-party client uses; no Mastercard page shows it.
DEFAULT_API_URL = 'https://apiedge.mastercard.com/developers'  # assumed (3P)
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3

ENV_VARS = {
    'api_url': 'MC_DEVAPI_URL',
    'consumer_key': 'MC_DEVAPI_CONSUMER_KEY',
    'signing_key_path': 'MC_DEVAPI_SIGNING_KEY_PATH',
    'signing_key_content': 'MC_DEVAPI_SIGNING_KEY_CONTENT',
    'signing_key_password': 'MC_DEVAPI_SIGNING_KEY_PASSWORD',
    'ca_path': 'MC_DEVAPI_CA_PATH',
    'validate_certs': 'MC_DEVAPI_VALIDATE_CERTS',
    'timeout': 'MC_DEVAPI_TIMEOUT',
    'retries': 'MC_DEVAPI_RETRIES',
    'contract_path': 'MC_DEVAPI_CONTRACT',
}

# The signing key password as a file (what the AWX credential type injects), read when no password is given.
PASSWORD_FILE_ENV = 'MC_DEVAPI_SIGNING_KEY_PASSWORD_FILE'

# signing_key_path / signing_key_content have no fallback in the spec: Ansible
# applies fallbacks before checking mutual exclusion, so an environment path
# would clash with an explicit content. client_from_params() reads their
# environment variables only when neither option is given.
SIGNING_KEY_OPTIONS = ('signing_key_path', 'signing_key_content')

CONNECTION_MUTUALLY_EXCLUSIVE = [['signing_key_path', 'signing_key_content']]
CONNECTION_REQUIRED_TOGETHER = []


def connection_argument_spec():
    """A fresh copy of the connection options' argument spec for AnsibleModule."""
    def with_env(option, **spec):
        if option not in SIGNING_KEY_OPTIONS:
            spec['fallback'] = (env_fallback, [ENV_VARS[option]])
        return spec

    return {
        'api_url': with_env('api_url', type='str', default=DEFAULT_API_URL),
        'consumer_key': with_env('consumer_key', type='str', no_log=False),
        'signing_key_path': with_env('signing_key_path', type='path', no_log=False),
        'signing_key_content': with_env('signing_key_content', type='str', no_log=True),
        'signing_key_password': with_env('signing_key_password', type='str', no_log=True),
        'ca_path': with_env('ca_path', type='path'),
        'validate_certs': with_env('validate_certs', type='bool', default=True),
        'timeout': with_env('timeout', type='float', default=DEFAULT_TIMEOUT),
        'retries': with_env('retries', type='int', default=DEFAULT_RETRIES),
        'contract_path': with_env('contract_path', type='path'),
    }


def connection_constraints():
    """The AnsibleModule keyword arguments the connection options need (merge with the module's own)."""
    return {
        'mutually_exclusive': [list(group) for group in CONNECTION_MUTUALLY_EXCLUSIVE],
        'required_together': [list(group) for group in CONNECTION_REQUIRED_TOGETHER],
    }
