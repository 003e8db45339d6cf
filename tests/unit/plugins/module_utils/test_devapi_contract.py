"""The Developers API contract as data: the defaults, a user's contract file merged over them, and every wrong
key or shape refused naming it."""

from __future__ import annotations

import json
import os
import re

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import devapi
from ansible_collections.mcdev.credentials.plugins.module_utils.devapi_contract import (
    EVIDENCE,
    OVERRIDE_EVIDENCE,
    Contract,
    ContractError,
)
from ansible_collections.mcdev.credentials.plugins.module_utils.devapi_contract_data import CONTRACT

CLIENT_OPS = {'get_project', 'list_credentials', 'get_credential', 'create_credential', 'activate_credential',
              'revoke_credential', 'renew_credential', 'get_certificate', 'upgrade_project_oauth2'}


def write(tmp_path, text, name='contract.yml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_every_default_entry_is_marked_and_every_operation_has_an_endpoint():
    assert set(CONTRACT['endpoints']) == CLIENT_OPS
    for section, entries in CONTRACT.items():
        for entry, spec in entries.items():
            assert spec['evidence'] in EVIDENCE, (section, entry)
    for spec in CONTRACT['endpoints'].values():
        assert spec['path'].startswith('/projects/{project_id}')


def test_the_client_code_spells_no_api_name():
    """Every API name lives in the data file: none of the distinctive ones is written in devapi.py."""
    with open(devapi.__file__, encoding='utf-8') as handle:
        source = handle.read()
    names = [spec['path'] for spec in CONTRACT['endpoints'].values()]
    names += [spec['name'] for section, entries in CONTRACT.items() if section not in ('endpoints', 'values', 'reason_codes')
              for spec in entries.values() if re.search(r'[A-Z]', spec['name'])]
    assert len(names) > 15
    for name in names:
        assert ("'%s'" % name) not in source and ('"%s"' % name) not in source, name
    # Reason codes key the hints for people; the client's decisions take them from the contract.
    for spec in CONTRACT['reason_codes'].values():
        assert not re.search(r"reason_code\s*[!=]=\s*'%s'" % spec['value'], source), spec['value']


def test_a_contract_file_overrides_only_what_it_names(tmp_path):
    path = write(tmp_path, '''
endpoints:
  list_credentials:
    path: /projects/{project_id}/keys
    evidence: seen
  revoke_credential: {method: post}
create_fields:
  alias: description
  csr: {name: csr, note: 'unchanged, so not an override'}
values:
  status_active: Active
''')
    contract = Contract.load(path)
    assert contract.overridden == ['endpoints.list_credentials.path', 'endpoints.revoke_credential.method',
                                   'create_fields.alias', 'values.status_active']
    assert contract.endpoint('list_credentials') == ('GET', '/projects/{project_id}/keys')
    assert contract.endpoint('revoke_credential') == ('POST', '/projects/{project_id}/credentials/{credential_id}')
    assert contract.evidence('endpoints', 'list_credentials') == 'seen'
    assert contract.evidence('create_fields', 'alias') == OVERRIDE_EVIDENCE
    assert contract.evidence('create_fields', 'csr') == 'assumed'
    assert contract.name('create_fields', 'alias') == 'description'
    # Records are read into the client's own words, and its words are sent in the API's.
    assert contract.our_word('status', 'Active') == devapi.STATUS_ACTIVE
    assert contract.api_value('status', devapi.STATUS_ACTIVE) == 'Active'
    credential = devapi.Credential.from_api({'id': 7, 'status': 'Active', 'type': 'SIGNING'}, contract)
    assert (credential.id, credential.status, credential.kind) == ('7', 'ACTIVE', 'oauth1')
    # The defaults are untouched by a load.
    assert Contract().endpoint('list_credentials')[1] == '/projects/{project_id}/credentials'
    assert Contract().overridden == [] and Contract.load(None).overridden == []


def test_a_json_file_and_an_empty_file_are_read(tmp_path):
    assert Contract.load(write(tmp_path, json.dumps({'page_fields': {'items': 'data'}}), 'c.json')).overridden == [
        'page_fields.items']
    assert Contract.load(write(tmp_path, '# nothing to correct\n', 'empty.yml')).overridden == []


BAD_FILES = [
    ('not-a-mapping', '- endpoints\n', 'must be a mapping of contract sections (endpoints, list_query'),
    ('unknown-section', 'endpoint:\n  get_project: {path: /x}\n', 'endpoint is not a contract section; use one of endpoints,'),
    ('section-not-a-mapping', 'create_fields: [alias]\n', 'create_fields must be a mapping of its entries (type,'),
    ('unknown-entry', 'endpoints:\n  list_credentails: {path: "/projects/{project_id}/keys"}\n',
     'endpoints.list_credentails is not a contract entry; endpoints has get_project, list_credentials,'),
    ('unknown-field', 'endpoints:\n  get_project: {url: /x}\n',
     'endpoints.get_project.url is not a field of a contract entry; use method, path, evidence, note'),
    ('endpoint-as-string', 'endpoints:\n  get_project: /projects/{project_id}\n',
     'endpoints.get_project must be a mapping with method and/or path'),
    ('field-as-list', 'create_fields:\n  alias: [description]\n',
     'create_fields.alias must be a string or a mapping with name'),
    ('empty-name', 'create_fields:\n  alias: ""\n', 'create_fields.alias.name must be a non-empty string'),
    ('name-with-space', 'credential_fields:\n  id: credential id\n',
     "credential_fields.id.name must be a field name without spaces or control characters, got 'credential id'"),
    ('bad-method', 'endpoints:\n  get_project: {method: FETCH}\n',
     "endpoints.get_project.method must be one of GET, POST, PUT, PATCH, DELETE, got 'FETCH'"),
    ('lost-placeholder', 'endpoints:\n  get_credential: {path: "/projects/{project_id}/credentials"}\n',
     'endpoints.get_credential.path must hold exactly the placeholders {credential_id}, {project_id}'),
    ('foreign-placeholder', 'endpoints:\n  get_project: {path: "/projects/{project}"}\n',
     'endpoints.get_project.path must hold exactly the placeholders {project_id}'),
    ('relative-path', 'endpoints:\n  get_project: {path: "projects/{project_id}"}\n',
     'endpoints.get_project.path must be a path after api_url starting with /'),
    ('path-with-query', 'endpoints:\n  get_project: {path: "/projects/{project_id}?x=1"}\n', 'without a query'),
    ('bad-evidence', 'values:\n  type_mtls: {value: MTLS, evidence: observed}\n',
     "values.type_mtls.evidence must be one of seen, third-party, assumed, got 'observed'"),
    ('bad-yaml', 'endpoints:\n  get_project: {path: /x\n', 'is not valid YAML at line'),
]


@pytest.mark.parametrize('case_id, text, expect', BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_wrong_contract_file_is_refused_naming_the_key(tmp_path, case_id, text, expect):
    path = write(tmp_path, text)
    with pytest.raises(ContractError) as refused:
        Contract.load(path)
    assert str(refused.value).startswith(path + ': '), str(refused.value)
    assert expect in str(refused.value), (case_id, str(refused.value))


def test_an_unreadable_contract_file_is_named(tmp_path):
    with pytest.raises(ContractError, match='absent.yml: cannot be read .No such file or directory.; point contract_path'):
        Contract.load(str(tmp_path / 'absent.yml'))
    if os.geteuid() != 0:
        path = write(tmp_path, 'endpoints: {}\n')
        os.chmod(path, 0)
        with pytest.raises(ContractError, match='Permission denied'):
            Contract.load(path)


def test_the_user_guide_lists_every_section_and_entry():
    """docs/devapi-contract.md tells users what they may correct: the same sections and entries as the data."""
    root = os.path.abspath(os.path.join(os.path.dirname(devapi.__file__), '..', '..'))
    with open(os.path.join(root, 'docs', 'devapi-contract.md'), encoding='utf-8') as handle:
        rows = re.findall(r'^\| `([a-z_]+)` \| (.+?) \|', handle.read(), re.M)
    listed = {section: set(re.findall(r'`([a-z0-9_]+)`', entries)) for section, entries in rows if section in CONTRACT}
    assert set(listed) == set(CONTRACT)
    for section, entries in CONTRACT.items():
        assert listed[section] == set(entries), section
