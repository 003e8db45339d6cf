# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of plugins/module_utils/devapi.py.

The first half is pure: envelope parsing, Retry-After, backoff, option
fallbacks, key loading. The second half runs the client against the emulator
over real HTTPS with real OAuth 1.0a signatures (the `emulator` fixture).
"""

import base64
import datetime
import hashlib
import json
import random
import time

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.mcdev.credentials.plugins.module_utils import devapi

UTC = datetime.timezone.utc


# ---------------------------------------------------------------------------
# Key material made here with cryptography, independent of module_utils/crypto.py
# ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _self_signed(key, common_name='devapi-test'):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))


def _p12_bytes(key, password):
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b'keyalias', key, _self_signed(key), None, encryption)


def _pem(key, password=None):
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def _spki_sha256(key):
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _no_env(monkeypatch):
    for name in devapi.ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)


ENVELOPE_404 = json.dumps({'Errors': {'Error': [{
    'Source': 'DEVELOPERS_API', 'ReasonCode': 'PROJECT_NOT_FOUND', 'Description': 'Project p-9 not found',
    'Details': '1662389676788-7e6e', 'Recoverable': False}]}}).encode()


# ---------------------------------------------------------------------------
# Error envelope
# ---------------------------------------------------------------------------

def test_envelope_becomes_one_error_with_all_fields():
    error = devapi.parse_error_response(404, ENVELOPE_404, {'Correlation-Id': 'corr-1'}, operation='getting project p-9')
    assert (error.status, error.reason_code, error.source, error.correlation_id) == (404, 'PROJECT_NOT_FOUND', 'DEVELOPERS_API', 'corr-1')
    assert error.description == 'Project p-9 not found'
    assert error.details == '1662389676788-7e6e'
    assert error.recoverable is False
    text = str(error)
    assert text.startswith('Getting project p-9 failed with HTTP 404 PROJECT_NOT_FOUND: Project p-9 not found;')
    assert devapi.REASON_HINTS['PROJECT_NOT_FOUND'] in text
    assert text.endswith('(correlation id corr-1).')
    assert text.count('\n') == 0


def test_envelope_with_single_error_object_and_x_mc_correlation_header():
    body = json.dumps({'Errors': {'Error': {'Source': 'Gateway', 'ReasonCode': 'DECLINED', 'Description': 'Access Not Granted'}}})
    error = devapi.parse_error_response(401, body, {'X-MC-Correlation-ID': 'c-2'})
    assert (error.reason_code, error.source, error.correlation_id) == ('DECLINED', 'Gateway', 'c-2')


def test_envelope_keeps_every_reason_code():
    body = json.dumps({'Errors': {'Error': [{'ReasonCode': 'INVALID_CSR', 'Description': 'blank'},
                                            {'ReasonCode': 'INVALID_KEY_TYPE', 'Description': 'SIGNING'}]}})
    error = devapi.parse_error_response(400, body)
    assert error.reason_code == 'INVALID_CSR'
    assert error.reason_codes == ['INVALID_CSR', 'INVALID_KEY_TYPE']


def test_authentication_failed_drops_the_echoed_base_string_and_gives_the_fix():
    description = ('OAuth signatures did not match. Acceptable signature base string: GET&https%3A%2F%2Fx%2Fdevelopers'
                   '&oauth_body_hash%3D47DEQ%26oauth_consumer_key%3Dck')
    body = json.dumps({'Errors': {'Error': [{'Source': 'Gateway', 'ReasonCode': 'AUTHENTICATION_FAILED', 'Description': description}]}})
    text = str(devapi.parse_error_response(403, body, operation='listing credentials of project p'))
    assert 'base string' not in text and 'oauth_body_hash' not in text
    assert 'consumer_key' in text and 'signing key' in text


def test_oauth2_style_error():
    error = devapi.parse_error_response(400, b'{"error":"invalid_client","error_description":"bad assertion"}')
    assert (error.reason_code, error.description) == ('invalid_client', 'bad assertion')


@pytest.mark.parametrize('body, expected', [
    (b'<html><body>502 Bad Gateway</body></html>', 'not a Mastercard error (text/html)'),
    (b'', 'empty body'),
    (b'{"unexpected": true}', 'not a Mastercard error'),
])
def test_non_envelope_bodies_give_status_and_hint(body, expected):
    error = devapi.parse_error_response(502, body, {'Content-Type': 'text/html; charset=utf-8'})
    assert error.reason_code is None
    assert expected in str(error)
    assert 'HTTP 502' in str(error)
    assert devapi.STATUS_HINTS[502] in str(error)


def test_error_text_never_carries_an_authorization_header_or_private_key(rsa_key):
    leaked = 'echo: OAuth oauth_consumer_key="ck",oauth_signature="c2VjcmV0" and ' + _pem(rsa_key)
    body = json.dumps({'Errors': {'Error': [{'ReasonCode': 'BAD_REQUEST', 'Description': leaked}]}})
    text = str(devapi.parse_error_response(400, body))
    assert 'c2VjcmV0' not in text
    assert 'PRIVATE KEY' not in text
    assert '[redacted]' in text


def test_long_descriptions_are_cut():
    body = json.dumps({'Errors': {'Error': [{'ReasonCode': 'BAD_REQUEST', 'Description': 'x' * 5000}]}})
    assert len(str(devapi.parse_error_response(400, body))) < 600


def test_fail_kwargs_for_modules():
    kwargs = devapi.parse_error_response(404, ENVELOPE_404, {'Correlation-Id': 'c'}).result()
    assert kwargs['status'] == 404 and kwargs['reason_code'] == 'PROJECT_NOT_FOUND' and kwargs['correlation_id'] == 'c'
    assert kwargs['msg'].endswith('.')


# ---------------------------------------------------------------------------
# Retry-After and backoff
# ---------------------------------------------------------------------------

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize('value, expected', [
    ('7', 7.0), ('0', 0.0), (' 2.5 ', 2.5),
    ('Sun, 01 Mar 2026 12:00:30 GMT', 30.0),
    ('Sun, 01 Mar 2026 11:00:00 GMT', 0.0),  # a date in the past means now
    ('soon', None), ('', None), (None, None), ('-3', None),
])
def test_parse_retry_after(value, expected):
    assert devapi.parse_retry_after(value, NOW) == expected


class _FakeTime:
    """Injected clock and sleep: sleeping advances the clock; every sleep is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_is_full_jitter_and_capped():
    class Top(random.Random):
        def uniform(self, a, b):
            return b
    ceilings = [devapi.backoff_delay(n, Top(), base=0.5, cap=4.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    rng = random.Random(7)
    samples = [devapi.backoff_delay(3, rng, base=0.5, cap=4.0) for _sample in range(500)]
    assert all(0 <= s <= 2.0 for s in samples)
    assert min(samples) < 0.2 and max(samples) > 1.8  # spread over the whole range, not a fixed delay


def _bare_client(rsa_key, fake, **kwargs):
    return devapi.DevApiClient('https://127.0.0.1:1/developers', 'ck', rsa_key, sleep=fake.sleep, clock=fake.clock, **kwargs)


def test_retry_budget_counts_and_clamps_retry_after(rsa_key):
    fake = _FakeTime()
    client = _bare_client(rsa_key, fake, retries=2)
    budget = client._new_budget()
    assert client._next_wait(budget, 500.0) == devapi.MAX_RETRY_AFTER_SECONDS
    assert client._next_wait(budget, 3.0) == 3.0
    assert client._next_wait(budget, 3.0) is None  # retries used up
    assert client.retry_count == 2


def test_retry_budget_stops_at_the_deadline(rsa_key):
    fake = _FakeTime()
    client = _bare_client(rsa_key, fake, retries=10, retry_deadline=10.0)
    budget = client._new_budget()
    assert client._next_wait(budget, 6.0) == 6.0
    fake.now += 6.0
    assert client._next_wait(budget, 6.0) is None  # would end after the deadline
    assert client._next_wait(budget, 3.0) == 3.0


def test_connection_refused_is_retried_with_backoff_then_reported(rsa_key):
    # Nothing listens on port 1: a real connection failure, before anything is sent.
    fake = _FakeTime()
    client = _bare_client(rsa_key, fake, retries=3, timeout=2)
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_project('p-1')
    assert caught.value.reason_code == 'CONNECTION_FAILED'
    assert caught.value.attempts == 4
    assert client.call_count == 4 and client.calls_by_op == {'get_project': 4} and client.retry_count == 3
    assert len(fake.sleeps) == 3
    for number, slept in enumerate(fake.sleeps, start=1):
        assert 0 <= slept <= devapi.DEFAULT_BACKOFF_BASE * 2 ** (number - 1)
    assert 'after 4 attempts' in str(caught.value) and 'api_url' in str(caught.value)


def test_create_is_resent_when_the_connection_never_opened(rsa_key):
    fake = _FakeTime()
    client = _bare_client(rsa_key, fake, retries=1, timeout=2)
    with pytest.raises(devapi.DevApiError) as caught:
        client.create_credential('p', 'oauth2', 'sandbox', 'alias-1', certificate_pem=_self_signed(rsa_key).public_bytes(
            serialization.Encoding.PEM).decode())
    # Refused before sending: safe to resend; no listing (adoption) was needed.
    assert caught.value.reason_code == 'CONNECTION_FAILED'
    assert client.calls_by_op == {'create_credential': 2}


# ---------------------------------------------------------------------------
# Connection options
# ---------------------------------------------------------------------------

def test_argument_spec_shape():
    spec = devapi.connection_argument_spec()
    assert set(spec) == set(devapi.ENV_VARS)
    assert spec['signing_key_content']['no_log'] is True
    assert spec['signing_key_password']['no_log'] is True
    for look_alike in ('consumer_key', 'signing_key_path'):
        assert spec[look_alike]['no_log'] is False
    for option, env_name in devapi.ENV_VARS.items():
        if option in ('signing_key_path', 'signing_key_content'):
            assert 'fallback' not in spec[option]
        else:
            assert spec[option]['fallback'][1] == [env_name]
    assert devapi.connection_argument_spec() is not spec  # a fresh copy each time
    assert devapi.connection_constraints()['mutually_exclusive'] == [['signing_key_path', 'signing_key_content']]


def test_argument_spec_env_fallback_and_explicit_wins(monkeypatch):
    _no_env(monkeypatch)
    monkeypatch.setenv('MC_DEVAPI_URL', 'https://env.example/developers')
    monkeypatch.setenv('MC_DEVAPI_CONSUMER_KEY', 'env-ck')
    monkeypatch.setenv('MC_DEVAPI_VALIDATE_CERTS', 'false')
    monkeypatch.setenv('MC_DEVAPI_TIMEOUT', '7.5')
    monkeypatch.setenv('MC_DEVAPI_RETRIES', '9')
    monkeypatch.setenv('MC_DEVAPI_SIGNING_KEY_PASSWORD', 'env-secret')
    validator = ArgumentSpecValidator(devapi.connection_argument_spec(), **devapi.connection_constraints())
    result = validator.validate({'consumer_key': 'explicit-ck'})
    assert not result.error_messages
    params = result.validated_parameters
    assert params['api_url'] == 'https://env.example/developers'
    assert params['consumer_key'] == 'explicit-ck'
    assert params['validate_certs'] is False and params['timeout'] == 7.5 and params['retries'] == 9
    assert 'env-secret' in result._no_log_values  # a secret from the environment is still masked


def test_argument_spec_defaults_without_env(monkeypatch):
    _no_env(monkeypatch)
    params = ArgumentSpecValidator(devapi.connection_argument_spec()).validate({}).validated_parameters
    assert params['api_url'] == devapi.DEFAULT_API_URL
    assert (params['validate_certs'], params['timeout'], params['retries']) == (True, devapi.DEFAULT_TIMEOUT, devapi.DEFAULT_RETRIES)


def test_explicit_signing_key_content_wins_over_env_path(monkeypatch, tmp_path, rsa_key):
    _no_env(monkeypatch)
    monkeypatch.setenv('MC_DEVAPI_SIGNING_KEY_PATH', str(tmp_path / 'from-env.p12'))
    validator = ArgumentSpecValidator(devapi.connection_argument_spec(), **devapi.connection_constraints())
    result = validator.validate({'signing_key_content': _pem(rsa_key)})
    assert not result.error_messages  # no clash with the environment's path
    resolved = devapi.resolve_connection_params(result.validated_parameters)
    assert resolved['signing_key_path'] is None and resolved['signing_key_content']


def test_signing_key_from_env_when_neither_option_given(monkeypatch, tmp_path, rsa_key):
    _no_env(monkeypatch)
    path = tmp_path / 'key.pem'
    path.write_text(_pem(rsa_key))
    resolved = devapi.resolve_connection_params({}, environ={'MC_DEVAPI_SIGNING_KEY_PATH': str(path)})
    assert resolved['signing_key_path'] == str(path)
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.resolve_connection_params({}, environ={'MC_DEVAPI_SIGNING_KEY_PATH': str(path), 'MC_DEVAPI_SIGNING_KEY_CONTENT': 'x'})
    assert 'MC_DEVAPI_SIGNING_KEY_PATH' in str(caught.value) and 'MC_DEVAPI_SIGNING_KEY_CONTENT' in str(caught.value)
    with pytest.raises(devapi.DevApiConfigError, match='mutually exclusive'):
        devapi.resolve_connection_params({'signing_key_path': str(path), 'signing_key_content': 'x'}, environ={})


def test_plain_dict_params_fall_back_to_env(rsa_key):
    environ = {'MC_DEVAPI_URL': 'https://e.example/developers', 'MC_DEVAPI_VALIDATE_CERTS': 'no', 'MC_DEVAPI_RETRIES': '0'}
    resolved = devapi.resolve_connection_params({'api_url': None, 'retries': 5}, environ=environ)
    assert resolved['api_url'] == 'https://e.example/developers'
    assert resolved['validate_certs'] is False
    assert resolved['retries'] == 5  # explicit wins
    with pytest.raises(devapi.DevApiConfigError, match='timeout'):
        devapi.resolve_connection_params({'timeout': 0}, environ={})


@pytest.mark.parametrize('url', ['http://127.0.0.1:8443/developers', 'HTTP://api.example/developers'])
def test_http_url_is_refused(url, rsa_key):
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.client_from_params({'api_url': url, 'consumer_key': 'ck', 'signing_key_content': _pem(rsa_key)}, environ={})
    assert caught.value.option == 'api_url'
    assert 'http://' in str(caught.value) and 'https://' in str(caught.value)
    with pytest.raises(devapi.DevApiConfigError):
        devapi.DevApiClient(url, 'ck', rsa_key)


@pytest.mark.parametrize('url', ['ftp://x/y', 'apiedge.mastercard.com/developers', 'https://'])
def test_non_https_urls_are_refused(url, rsa_key):
    with pytest.raises(devapi.DevApiConfigError, match='api_url'):
        devapi.DevApiClient(url, 'ck', rsa_key)


def test_validate_certs_false_warns(rsa_key):
    warnings = []
    client = devapi.client_from_params({'api_url': 'https://x.example/developers', 'consumer_key': 'ck',
                                        'signing_key_content': _pem(rsa_key), 'validate_certs': False},
                                       warn=warnings.append, environ={})
    assert client._verify is False
    assert len(warnings) == 1 and 'validate_certs' in warnings[0] and 'ca_path' in warnings[0]


def test_missing_consumer_key_and_ca_path_are_named(rsa_key, tmp_path):
    base = {'api_url': 'https://x.example/developers', 'signing_key_content': _pem(rsa_key)}
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.client_from_params(base, environ={})
    assert caught.value.option == 'consumer_key' and 'MC_DEVAPI_CONSUMER_KEY' in str(caught.value)
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.client_from_params(dict(base, consumer_key='ck', ca_path=str(tmp_path / 'none.pem')), environ={})
    assert caught.value.option == 'ca_path'
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.client_from_params({'api_url': 'https://x.example/developers', 'consumer_key': 'ck'}, environ={})
    assert caught.value.option == 'signing_key_path' and 'signing_key_content' in str(caught.value)


# ---------------------------------------------------------------------------
# Signing key loading
# ---------------------------------------------------------------------------

def _same_key(loaded, key):
    return _spki_sha256(loaded) == _spki_sha256(key)


def test_load_pkcs12_path_with_password(rsa_key, tmp_path):
    path = tmp_path / 'devapi.p12'
    path.write_bytes(_p12_bytes(rsa_key, 'keystorepassword'))
    assert _same_key(devapi.load_signing_key(path=str(path), password='keystorepassword'), rsa_key)


def test_load_pkcs12_content_base64_and_unencrypted(rsa_key):
    content = base64.b64encode(_p12_bytes(rsa_key, 'pw')).decode()
    assert _same_key(devapi.load_signing_key(content=content, password='pw'), rsa_key)
    bare = base64.encodebytes(_p12_bytes(rsa_key, None)).decode()  # line-wrapped base64
    assert _same_key(devapi.load_signing_key(content=bare), rsa_key)


def test_load_pem_plain_and_encrypted(rsa_key, tmp_path):
    assert _same_key(devapi.load_signing_key(content=_pem(rsa_key)), rsa_key)
    path = tmp_path / 'key.pem'
    path.write_text(_pem(rsa_key, 'pem-pass'))
    assert _same_key(devapi.load_signing_key(path=str(path), password='pem-pass'), rsa_key)


@pytest.mark.parametrize('fmt', ['p12', 'pem'])
def test_wrong_password_names_the_option_and_hides_it(rsa_key, tmp_path, fmt):
    path = tmp_path / ('key.' + fmt)
    if fmt == 'p12':
        path.write_bytes(_p12_bytes(rsa_key, 'right-password'))
    else:
        path.write_text(_pem(rsa_key, 'right-password'))
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.load_signing_key(path=str(path), password='Wrong-Pa55word')
    text = str(caught.value)
    assert caught.value.option == 'signing_key_password'
    assert 'signing_key_password' in text and str(path) in text
    assert 'Wrong-Pa55word' not in text and 'right-password' not in text


def test_encrypted_pem_without_password(rsa_key):
    with pytest.raises(devapi.DevApiConfigError, match='signing_key_password'):
        devapi.load_signing_key(content=_pem(rsa_key, 'pw'))


def test_corrupt_and_missing_files_name_signing_key_path(tmp_path):
    path = tmp_path / 'junk.p12'
    path.write_bytes(b'\x30\x82not a keystore')
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.load_signing_key(path=str(path), password='x')
    assert 'signing_key_path' in str(caught.value)
    with pytest.raises(devapi.DevApiConfigError) as caught:
        devapi.load_signing_key(path=str(tmp_path / 'absent.p12'), password='x')
    assert caught.value.option == 'signing_key_path'


def test_non_rsa_key_is_refused():
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(devapi.DevApiConfigError, match='not an RSA key'):
        devapi.load_signing_key(content=ec_pem)


# ---------------------------------------------------------------------------
# Records and the endpoint table
# ---------------------------------------------------------------------------

def test_credential_record_fills_facts_from_the_certificate(rsa_key):
    cert = _self_signed(rsa_key, 'rec-Client-MTF-000000')
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    record = devapi.Credential.from_api({
        'id': 42, 'alias': 'a1', 'type': 'SIGNING', 'oauthVersion': '2.0', 'environment': 'SANDBOX', 'status': 'ACTIVE',
        'clientId': 'cid', 'kid': 'kid1', 'certificate': pem, 'createdDate': '2026-01-02T03:04:05Z',
        'expiryDate': '2027-02-01T00:00:00Z', 'fingerprint': 'AB:CD'})
    assert record.id == '42' and record.kind == 'oauth2'
    assert record.fingerprint == 'abcd'  # the API's value, normalised, wins
    assert record.public_key_fingerprint == _spki_sha256(rsa_key)
    assert record.serial == '%x' % cert.serial_number
    assert record.subject == 'CN=rec-Client-MTF-000000'
    assert record.expires == datetime.datetime(2027, 2, 1, tzinfo=UTC)
    result = record.to_dict()
    assert 'certificate_pem' not in result and pem not in json.dumps(result)
    assert result['environment'] == 'sandbox' and result['expires'] == '2027-02-01T00:00:00Z'
    assert record.to_dict(include_certificate=True)['certificate_pem'] == pem


@pytest.mark.parametrize('api_type, version, kind', [
    ('MTLS', None, 'mtls'), ('SIGNING', '1.0a', 'oauth1'), ('SIGNING', '2.0', 'oauth2'), ('SIGNING', None, 'oauth1'),
    ('CLIENT_ENCRYPTION', None, None)])
def test_kind_derivation(api_type, version, kind):
    assert devapi.kind_of(api_type, version) == kind


def test_ids_cannot_change_the_path(rsa_key):
    client = _bare_client(rsa_key, _FakeTime())
    method, url = client._url('get_credential', {'project_id': 'p/../x', 'credential_id': 'c?y=1'})
    assert method == 'GET'
    assert url == 'https://127.0.0.1:1/developers/projects/p%2F..%2Fx/credentials/c%3Fy%3D1'


# ---------------------------------------------------------------------------
# Against the running emulator: real HTTPS, real OAuth 1.0a signatures
# ---------------------------------------------------------------------------

def _csr(key, common_name):
    algorithm = hashes.SHA256()
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode())


def _mtls_common_name(tag):
    return '%d%s-Client-MTF-000000' % (int(datetime.datetime.now(UTC).timestamp()), tag)


@pytest.fixture
def account(emulator):
    return emulator.new_account()


@pytest.fixture
def oauth_project(emulator, account):
    return emulator.new_project(account['account_id'])


@pytest.fixture
def mtls_project(emulator, account):
    return emulator.new_project(account['account_id'], auth_model='MTLS')


@pytest.fixture
def faults(emulator):
    """Inject faults for one test; they are always removed afterwards (the emulator is shared)."""
    def inject(**spec):
        emulator.admin('POST', '/faults', spec)
    emulator.admin('DELETE', '/faults')
    yield inject
    emulator.admin('DELETE', '/faults')


def _counters(emulator):
    return emulator.admin('GET', '/counters')


def _counter_delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


@pytest.fixture
def fake_time():
    return _FakeTime()


@pytest.fixture
def connect(emulator, account, fake_time):
    """Build a client for the test's account; overrides go to the params or to DevApiClient."""
    def build(warn=None, **overrides):
        params = {'api_url': emulator.info['api_url'], 'consumer_key': account['consumer_key'],
                  'signing_key_content': account['signing_key_pem'], 'ca_path': emulator.info['ca_path']}
        client_kwargs = {name: overrides.pop(name) for name in ('retry_deadline',) if name in overrides}
        params.update(overrides)
        return devapi.client_from_params(params, warn=warn, environ={}, sleep=fake_time.sleep, clock=fake_time.clock,
                                         rng=random.Random(3), **client_kwargs)
    return build


def test_get_project(connect, oauth_project):
    client = connect()
    project = client.get_project(oauth_project['id'])
    assert isinstance(project, devapi.Project)
    assert (project.id, project.auth_model, project.oauth2_enabled) == (oauth_project['id'], 'OAUTH10A', False)
    assert project.to_dict()['environments'] == ['sandbox', 'production']
    assert client.call_count == 1 and client.calls_by_op == {'get_project': 1}


@pytest.mark.parametrize('credential_id', ['foo@bar', 'token1:token2', 'a b%c', 'x/y?z=1', '\u20ac'])
def test_ids_with_reserved_characters_are_signed_as_the_gateway_reads_them(connect, oauth_project, credential_id):
    """The id goes out percent-encoded and is signed so; the gateway signs that target as sent (not decoded)."""
    client = connect()
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_credential(oauth_project['id'], credential_id)
    assert caught.value.status == 404 and caught.value.source == 'DEVELOPERS_API', str(caught.value)


def test_unknown_project_is_a_404_with_reason_and_correlation(connect):
    client = connect()
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_project('no-such-project')
    error = caught.value
    assert (error.status, error.reason_code, error.source) == (404, 'PROJECT_NOT_FOUND', 'DEVELOPERS_API')
    assert error.correlation_id
    assert 'project_id' in str(error) and error.correlation_id in str(error)
    assert client.call_count == 1  # a 404 is not retried


def test_another_accounts_project_is_refused(emulator, connect):
    other = emulator.new_account()
    foreign = emulator.new_project(other['account_id'])
    with pytest.raises(devapi.DevApiError) as caught:
        connect().list_credentials(foreign['id'])
    assert (caught.value.status, caught.value.reason_code) == (403, 'NO_ACCESS_TO_PROJECT')


def test_create_oauth1_key_from_csr_then_get_and_list(connect, oauth_project, rsa_key):
    client = connect()
    created = client.create_credential(oauth_project['id'], 'oauth1', 'sandbox', 'app-1', csr_pem=_csr(rsa_key, 'app-1'))
    assert (created.kind, created.type, created.environment, created.status) == ('oauth1', 'SIGNING', 'SANDBOX', 'ACTIVE')
    assert created.public_key_fingerprint == _spki_sha256(rsa_key)  # Mastercard certified our key
    certificate = x509.load_pem_x509_certificate(created.certificate_pem.encode())
    assert created.fingerprint == hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert created.consumer_key and created.consumer_key.endswith('!' + created.kid)
    assert created.expires - created.created > datetime.timedelta(days=390)
    assert client.calls_by_op == {'create_credential': 1}
    assert client.last_create_adopted is False

    fetched = client.get_credential(oauth_project['id'], created.id)
    assert fetched.to_dict() == created.to_dict()
    listed = client.list_credentials(oauth_project['id'], environment='SANDBOX', kind='oauth1')
    assert [c.id for c in listed] == [created.id]
    assert client.list_credentials(oauth_project['id'], environment='production') == []


def test_list_follows_pagination_and_filters(emulator, connect, oauth_project):
    seeded = [emulator.admin('POST', '/projects/%s/credentials' % oauth_project['id'], {'alias': 'seed-%d' % n})
              for n in range(5)]
    emulator.admin('POST', '/projects/%s/credentials' % oauth_project['id'], {'alias': 'prod', 'environment': 'PRODUCTION'})
    client = connect()
    listed = client.list_credentials(oauth_project['id'], environment='sandbox', page_size=2)
    assert sorted(c.id for c in listed) == sorted(s['id'] for s in seeded)
    assert client.calls_by_op['list_credentials'] == 3  # pages of 2, 2, 1
    assert len(client.list_credentials(oauth_project['id'])) == 6
    assert client.list_credentials(oauth_project['id'], kind='oauth2') == []
    assert client.list_credentials(oauth_project['id'], kind='mtls') == []


def test_mtls_certificate_from_csr_and_issued_chain(connect, mtls_project, rsa_key):
    client = connect()
    created = client.create_credential(mtls_project['id'], 'mtls', 'sandbox', 'web-1',
                                       csr_pem=_csr(rsa_key, _mtls_common_name('a')))
    assert created.kind == 'mtls' and created.consumer_key is None
    issued = client.get_certificate(mtls_project['id'], created.id)
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    issuer = x509.load_pem_x509_certificate(issued.chain_pem[0].encode())
    leaf.verify_directly_issued_by(issuer)  # raises if the chain does not sign the leaf
    assert issued.certificate_pem.strip() == created.certificate_pem.strip()
    assert issued.full_chain_pem().count('BEGIN CERTIFICATE') == 2


def test_mtls_certificate_from_an_uploaded_certificate(emulator, connect, mtls_project, rsa_key):
    with open(emulator.info['external_ca_path'], 'rb') as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(emulator.info['external_ca_key_path'], 'rb') as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), password=None)
    now = datetime.datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _mtls_common_name('u'))]))
            .issuer_name(ca_cert.subject).public_key(rsa_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=300))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    created = connect().create_credential(mtls_project['id'], 'mtls', 'sandbox', 'upload-1', certificate_pem=pem)
    assert created.fingerprint == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_revoke_activate_and_their_errors(emulator, connect, oauth_project):
    inactive = emulator.admin('POST', '/projects/%s/credentials' % oauth_project['id'], {'alias': 'idle', 'status': 'INACTIVE'})
    inactive_id = inactive['id']
    client = connect()
    assert client.activate_credential(oauth_project['id'], inactive_id).status == 'ACTIVE'
    revoked = client.revoke_credential(oauth_project['id'], inactive_id)
    assert revoked.status == 'REVOKED'
    assert client.revoke_credential(oauth_project['id'], inactive_id).status == 'REVOKED'  # revoking again is harmless
    with pytest.raises(devapi.DevApiError) as caught:
        client.activate_credential(oauth_project['id'], inactive_id)
    assert (caught.value.status, caught.value.reason_code) == (400, 'INVALID_CREDENTIAL_STATUS')
    with pytest.raises(devapi.DevApiError) as caught:
        client.revoke_credential(oauth_project['id'], 'no-such-credential')
    assert (caught.value.status, caught.value.reason_code) == (404, 'CREDENTIAL_NOT_FOUND')
    assert 'credential_id' in str(caught.value)


def test_renew_keeps_the_key_and_refuses_oauth2(connect, oauth_project, rsa_key):
    client = connect()
    original = client.create_credential(oauth_project['id'], 'oauth1', 'sandbox', 'renew-me', csr_pem=_csr(rsa_key, 'renew-me'))
    renewed = client.renew_credential(oauth_project['id'], original.id)
    assert renewed.id == original.id
    assert renewed.public_key_fingerprint == original.public_key_fingerprint
    assert renewed.fingerprint != original.fingerprint and renewed.serial != original.serial
    assert client.calls_by_op['renew_credential'] == 1


def test_upgrade_to_oauth2_then_oauth2_keys_up_to_the_limit(connect, oauth_project):
    client = connect()
    with pytest.raises(devapi.DevApiError) as caught:
        client.create_credential(oauth_project['id'], 'oauth2', 'sandbox', 'too-early',
                                 csr_pem=_csr(ec.generate_private_key(ec.SECP256R1()), 'too-early'))
    assert caught.value.reason_code == 'PROJECT_TYPE_NOT_SUPPORTED'
    project = client.upgrade_project_oauth2(oauth_project['id'])
    assert project.oauth2_enabled is True
    keys = [client.create_credential(oauth_project['id'], 'oauth2', 'sandbox', 'k%d' % n,
                                     csr_pem=_csr(ec.generate_private_key(ec.SECP256R1()), 'k%d' % n)) for n in range(3)]
    assert all(k.kind == 'oauth2' and k.kid and k.client_id for k in keys)
    with pytest.raises(devapi.DevApiError) as caught:
        client.create_credential(oauth_project['id'], 'oauth2', 'sandbox', 'k4',
                                 csr_pem=_csr(ec.generate_private_key(ec.SECP256R1()), 'k4'))
    assert (caught.value.status, caught.value.reason_code) == (409, 'MAX_OAUTH2_KEYS_EXCEEDED')
    assert 'revoke one of the project' in str(caught.value)
    assert client.calls_by_op['create_credential'] == 5  # a 409 is final, never resent
    with pytest.raises(devapi.DevApiError) as caught:
        client.renew_credential(oauth_project['id'], keys[0].id)
    assert caught.value.reason_code == 'RENEWAL_NOT_SUPPORTED' and 'rotate' in str(caught.value)


def test_retries_an_injected_503_then_succeeds(emulator, connect, oauth_project, faults, fake_time):
    faults(route='get_project', status=503, count=2)
    before = _counters(emulator)
    client = connect()
    assert client.get_project(oauth_project['id']).id == oauth_project['id']
    assert client.calls_by_op == {'get_project': 3} and client.retry_count == 2
    assert _counter_delta(before, _counters(emulator), 'GET /developers/projects/<project_id>') == 3
    assert len(fake_time.sleeps) == 2 and all(0 <= s <= 1.0 for s in fake_time.sleeps)


def test_honours_retry_after_on_429(emulator, connect, oauth_project, faults, fake_time):
    faults(route='list_credentials', status=429, retry_after=7, count=1)
    before = _counters(emulator)
    client = connect()
    assert client.list_credentials(oauth_project['id']) == []
    assert fake_time.sleeps == [7.0]  # waited the server's Retry-After, not a shorter backoff
    assert client.calls_by_op == {'list_credentials': 2} and client.retry_count == 1
    assert _counter_delta(before, _counters(emulator), 'GET /developers/projects/<project_id>/credentials') == 2


def test_gives_up_after_retries_with_one_clear_error(connect, oauth_project, faults, fake_time):
    faults(route='get_project', status=503)
    client = connect(retries=2)
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_project(oauth_project['id'])
    assert (caught.value.status, caught.value.reason_code, caught.value.attempts) == (503, 'SERVICE_UNAVAILABLE', 3)
    assert 'after 3 attempts' in str(caught.value)
    assert client.calls_by_op == {'get_project': 3} and len(fake_time.sleeps) == 2


def test_retry_after_beyond_the_deadline_is_not_waited_for(connect, oauth_project, faults, fake_time):
    faults(route='get_project', status=429, retry_after=30, count=5)
    client = connect(retry_deadline=20)
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_project(oauth_project['id'])
    assert caught.value.status == 429 and caught.value.retry_after == 30.0
    assert fake_time.sleeps == [] and client.call_count == 1


def test_create_after_a_dropped_response_adopts_the_created_credential(connect, oauth_project, faults, rsa_key):
    faults(route='create_credential', drop_response_rate=1.0, count=1)
    client = connect()
    adopted = client.create_credential(oauth_project['id'], 'oauth1', 'sandbox', 'rotation-1700000000',
                                       csr_pem=_csr(rsa_key, 'rotation-1700000000'))
    assert client.last_create_adopted is True
    assert client.calls_by_op == {'create_credential': 1, 'list_credentials': 1}  # never resent
    assert adopted.public_key_fingerprint == _spki_sha256(rsa_key)
    same_alias = [c for c in connect().list_credentials(oauth_project['id']) if c.alias == 'rotation-1700000000']
    assert [c.id for c in same_alias] == [adopted.id]
    assert any('adopted' in note for note in client.notes)


def test_create_after_a_5xx_that_created_nothing_is_sent_again(connect, oauth_project, faults, rsa_key):
    faults(route='create_credential', status=503, count=1)
    client = connect()
    created = client.create_credential(oauth_project['id'], 'oauth1', 'sandbox', 'after-503', csr_pem=_csr(rsa_key, 'after-503'))
    assert client.last_create_adopted is False
    assert client.calls_by_op == {'create_credential': 2, 'list_credentials': 1}
    assert [c.id for c in connect().list_credentials(oauth_project['id']) if c.alias == 'after-503'] == [created.id]


def test_create_rate_limited_is_resent_without_listing(connect, oauth_project, faults, rsa_key, fake_time):
    faults(route='create_credential', status=429, retry_after=2, count=1)
    client = connect()
    client.create_credential(oauth_project['id'], 'oauth1', 'sandbox', 'after-429', csr_pem=_csr(rsa_key, 'after-429'))
    assert client.calls_by_op == {'create_credential': 2}  # a 429 proves nothing was created
    assert fake_time.sleeps == [2.0]


def test_create_whose_answer_is_too_slow_ends_with_one_credential(connect, oauth_project, faults, rsa_key):
    # The first POST is processed only after the client gave up on it (timeout); the resend creates
    # the credential and the late first one then hits the alias rule. Exactly one survives.
    faults(route='create_credential', latency_ms=1500, count=1)
    client = connect(timeout=0.5)
    created = client.create_credential(oauth_project['id'], 'oauth1', 'sandbox', 'slow-1', csr_pem=_csr(rsa_key, 'slow-1'))
    assert client.calls_by_op['create_credential'] == 2 and client.calls_by_op['list_credentials'] >= 1
    time.sleep(1.5)  # let the late first request finish server-side
    assert [c.id for c in connect().list_credentials(oauth_project['id']) if c.alias == 'slow-1'] == [created.id]


def test_revoke_is_resent_after_a_dropped_response(connect, oauth_project, faults, emulator):
    seeded = emulator.admin('POST', '/projects/%s/credentials' % oauth_project['id'], {'alias': 'old'})
    credential_id = seeded['id']
    faults(route='revoke_credential', drop_response_rate=1.0, count=1)
    client = connect()
    assert client.revoke_credential(oauth_project['id'], credential_id).status == 'REVOKED'
    assert client.calls_by_op == {'revoke_credential': 2}


def test_upgrade_after_a_dropped_response_reads_the_project(connect, oauth_project, faults):
    faults(route='upgrade_project', drop_response_rate=1.0, count=1)
    client = connect()
    assert client.upgrade_project_oauth2(oauth_project['id']).oauth2_enabled is True
    assert client.calls_by_op == {'upgrade_project_oauth2': 1, 'get_project': 1}


def test_renew_after_a_dropped_response_says_the_outcome_is_unknown(connect, oauth_project, faults, emulator):
    seeded = emulator.admin('POST', '/projects/%s/credentials' % oauth_project['id'], {'alias': 'r'})
    credential_id = seeded['id']
    faults(route='renew_credential', drop_response_rate=1.0, count=1)
    client = connect()
    with pytest.raises(devapi.DevApiError) as caught:
        client.renew_credential(oauth_project['id'], credential_id)
    assert caught.value.reason_code == 'OUTCOME_UNKNOWN' and 'before renewing again' in str(caught.value)
    assert client.calls_by_op == {'renew_credential': 1}


def test_wrong_signing_key_is_authentication_failed_without_secrets(emulator, account, oauth_project, rsa_key):
    wrong_pem = _pem(rsa_key, 'Secret-Pa55')
    client = devapi.client_from_params({'api_url': emulator.info['api_url'], 'consumer_key': account['consumer_key'],
                                        'signing_key_content': wrong_pem, 'signing_key_password': 'Secret-Pa55',
                                        'ca_path': emulator.info['ca_path']}, environ={})
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_project(oauth_project['id'])
    error = caught.value
    assert (error.status, error.reason_code, error.source) == (403, 'AUTHENTICATION_FAILED', 'Gateway')
    text = str(error) + repr(error.result())
    assert 'consumer_key' in text and 'signing key' in text
    for secret in ('Secret-Pa55', 'PRIVATE KEY', 'oauth_signature', 'base string', wrong_pem.splitlines()[1]):
        assert secret not in text
    assert client.call_count == 1  # an authentication failure is not retried


def test_unknown_consumer_key(emulator, account, oauth_project):
    client = devapi.client_from_params({'api_url': emulator.info['api_url'], 'consumer_key': 'nobody!00',
                                        'signing_key_content': account['signing_key_pem'],
                                        'ca_path': emulator.info['ca_path']}, environ={})
    with pytest.raises(devapi.DevApiError) as caught:
        client.get_project(oauth_project['id'])
    assert caught.value.status == 401 and 'consumer_key' in str(caught.value)


def test_server_certificate_is_verified(emulator, account, oauth_project):
    params = {'api_url': emulator.info['api_url'], 'consumer_key': account['consumer_key'],
              'signing_key_content': account['signing_key_pem']}
    with pytest.raises(devapi.DevApiError) as caught:
        devapi.client_from_params(params, environ={}).get_project(oauth_project['id'])
    assert caught.value.reason_code == 'TLS_ERROR' and 'ca_path' in str(caught.value)
    warnings = []
    insecure = devapi.client_from_params(dict(params, validate_certs=False), warn=warnings.append, environ={})
    assert insecure.get_project(oauth_project['id']).id == oauth_project['id']
    assert len(warnings) == 1


def test_env_fallbacks_end_to_end_with_a_pkcs12_keystore(emulator, account, oauth_project, monkeypatch, tmp_path):
    _no_env(monkeypatch)
    keystore = tmp_path / 'devapi.p12'
    keystore.write_bytes(base64.b64decode(account['signing_key_p12_b64']))
    monkeypatch.setenv('MC_DEVAPI_URL', emulator.info['api_url'])
    monkeypatch.setenv('MC_DEVAPI_CONSUMER_KEY', account['consumer_key'])
    monkeypatch.setenv('MC_DEVAPI_SIGNING_KEY_PATH', str(keystore))
    monkeypatch.setenv('MC_DEVAPI_SIGNING_KEY_PASSWORD', account['p12_password'])
    monkeypatch.setenv('MC_DEVAPI_CA_PATH', emulator.info['ca_path'])
    monkeypatch.setenv('MC_DEVAPI_RETRIES', '0')
    result = ArgumentSpecValidator(devapi.connection_argument_spec(), **devapi.connection_constraints()).validate({})
    assert not result.error_messages
    client = devapi.client_from_params(result.validated_parameters)
    assert client.retries == 0
    assert client.get_project(oauth_project['id']).id == oauth_project['id']
    # The keystore as base64 content in the environment works the same way.
    monkeypatch.delenv('MC_DEVAPI_SIGNING_KEY_PATH')
    monkeypatch.setenv('MC_DEVAPI_SIGNING_KEY_CONTENT', account['signing_key_p12_b64'])
    client = devapi.client_from_params(ArgumentSpecValidator(devapi.connection_argument_spec()).validate({}).validated_parameters)
    assert client.get_project(oauth_project['id']).id == oauth_project['id']
