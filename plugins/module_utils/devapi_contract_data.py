# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Developers API contract: every path, method, query parameter, body field, record field, value and
reason code the client uses, each with its evidence (reference/mastercard-api.md):

- ``seen``: in a Mastercard page or error;
- ``third-party``: in another client of the API;
- ``assumed``: inferred or invented, until the real spec is at hand.

PRIVATE to this collection. This is data, not code: a user corrects an entry with a contract file
(connection option ``contract_path`` or ``MC_DEVAPI_CONTRACT``, see docs/devapi-contract.md) merged over it by
devapi_contract.py. It is a Python literal and not a YAML file because Ansible ships only Python
module_utils to the host where a module runs.
"""

from __future__ import annotations

CONTRACT = {
    "endpoints": {
        "get_project": {"method": "GET", "path": "/projects/{project_id}", "evidence": "third-party"},
        "list_credentials": {"method": "GET", "path": "/projects/{project_id}/credentials", "evidence": "assumed",
                             "note": "inferred from the portal's list; paging assumed"},
        "get_credential": {"method": "GET", "path": "/projects/{project_id}/credentials/{credential_id}",
                           "evidence": "assumed", "note": "inferred"},
        "create_credential": {"method": "POST", "path": "/projects/{project_id}/credentials", "evidence": "seen",
                              "note": "path seen; the body is create_fields"},
        "activate_credential": {"method": "PATCH", "path": "/projects/{project_id}/credentials/{credential_id}",
                                "evidence": "assumed", "note": "the body is seen; the verb is assumed"},
        "revoke_credential": {"method": "DELETE", "path": "/projects/{project_id}/credentials/{credential_id}",
                              "evidence": "seen"},
        "renew_credential": {"method": "POST", "path": "/projects/{project_id}/credentials/{credential_id}/renewal",
                             "evidence": "assumed"},
        "get_certificate": {"method": "GET", "path": "/projects/{project_id}/credentials/{credential_id}/certificate",
                            "evidence": "assumed"},
        "upgrade_project_oauth2": {"method": "POST", "path": "/projects/{project_id}/oauth2-upgrade",
                                   "evidence": "assumed"},
    },
    # Query parameters of list_credentials.
    "list_query": {
        "environment": {"name": "environment", "evidence": "assumed"},
        "type": {"name": "type", "evidence": "assumed"},
        "offset": {"name": "offset", "evidence": "assumed"},
        "limit": {"name": "limit", "evidence": "assumed"},
    },
    # The page envelope of list_credentials (a bare JSON list is read as one page).
    "page_fields": {
        "items": {"name": "items", "evidence": "assumed"},
        "total": {"name": "total", "evidence": "assumed"},
    },
    # The body of create_credential.
    "create_fields": {
        "type": {"name": "type", "evidence": "assumed"},
        "environment": {"name": "environment", "evidence": "assumed"},
        "alias": {"name": "alias", "evidence": "assumed"},
        "oauth_version": {"name": "oauthVersion", "evidence": "assumed"},
        "csr": {"name": "csr", "evidence": "assumed"},
        "certificate": {"name": "certificate", "evidence": "assumed"},
    },
    # The body of activate_credential: {status: values.status_active}.
    "activate_fields": {
        "status": {"name": "status", "evidence": "seen", "note": "INVALID_CREDENTIAL_STATUS error page"},
    },
    # A credential record.
    "credential_fields": {
        "id": {"name": "id", "evidence": "assumed"},
        "alias": {"name": "alias", "evidence": "assumed"},
        "type": {"name": "type", "evidence": "seen", "note": "SIGNING seen in an error"},
        "environment": {"name": "environment", "evidence": "assumed"},
        "status": {"name": "status", "evidence": "seen"},
        "oauth_version": {"name": "oauthVersion", "evidence": "assumed"},
        "consumer_key": {"name": "consumerKey", "evidence": "assumed"},
        "client_id": {"name": "clientId", "evidence": "assumed"},
        "kid": {"name": "kid", "evidence": "assumed"},
        "certificate_pem": {"name": "certificate", "evidence": "assumed"},
        "fingerprint": {"name": "fingerprint", "evidence": "assumed"},
        "public_key_fingerprint": {"name": "publicKeyFingerprint", "evidence": "assumed"},
        "serial": {"name": "serialNumber", "evidence": "assumed"},
        "subject": {"name": "subjectDn", "evidence": "assumed"},
        "created": {"name": "createdDate", "evidence": "assumed"},
        "expires": {"name": "expiryDate", "evidence": "assumed"},
    },
    # A project record.
    "project_fields": {
        "id": {"name": "id", "evidence": "assumed"},
        "name": {"name": "name", "evidence": "assumed"},
        "auth_model": {"name": "authModel", "evidence": "assumed", "note": "values OAUTH10A and MTLS seen in errors"},
        "oauth2_enabled": {"name": "oauth2Enabled", "evidence": "assumed"},
        "environments": {"name": "environments", "evidence": "assumed"},
    },
    # The answer of get_certificate.
    "certificate_fields": {
        "certificate": {"name": "certificate", "evidence": "assumed"},
        "chain": {"name": "chain", "evidence": "assumed"},
    },
    # Values the client sends and reads.
    "values": {
        "type_mtls": {"value": "MTLS", "evidence": "assumed"},
        "type_signing": {"value": "SIGNING", "evidence": "seen"},
        "oauth_version_1": {"value": "1.0a", "evidence": "assumed"},
        "oauth_version_2": {"value": "2.0", "evidence": "assumed"},
        "status_active": {"value": "ACTIVE", "evidence": "seen"},
        "status_revoked": {"value": "REVOKED", "evidence": "assumed"},
        "environment_sandbox": {"value": "SANDBOX", "evidence": "third-party"},
        "environment_production": {"value": "PRODUCTION", "evidence": "third-party"},
    },
    # Reason codes the client acts on (the hints for people are in devapi.REASON_HINTS).
    "reason_codes": {
        "alias_exists": {"value": "CREDENTIAL_ALIAS_ALREADY_EXISTS", "evidence": "assumed",
                         "note": "a resent create found its own earlier success"},
    },
}
