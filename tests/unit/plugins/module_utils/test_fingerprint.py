"""_fingerprint: one rule for reading a fingerprint, used by the API client, mc_revoke's selection and mc_verify
(issue 12's "fingerprint normalisation three times with different rules")."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import _fingerprint, devapi, revoke, verify

HEX = "ab" * 32


@pytest.mark.parametrize("spelling", [HEX, HEX.upper(), ":".join(["AB"] * 32), "sha256:" + HEX, "SHA256:" + HEX,
                                      "SHA-256=" + HEX, " ".join(["ab"] * 32), "-".join(["ab"] * 32), " %s\n" % HEX])
def test_every_common_spelling_reads_the_same(spelling):
    assert _fingerprint.normalize(spelling) == HEX


@pytest.mark.parametrize("value", [None, "", "   ", "not-a-fingerprint", "sha256:", "zz" * 32])
def test_what_is_not_a_fingerprint_is_none(value):
    assert _fingerprint.normalize(value) is None


def test_a_prefixed_fingerprint_from_the_api_is_not_mangled():
    # the client's old rule dropped every non-hex letter: "sha256:ab.." became "a256ab.."
    record = devapi.Credential.from_api({"id": "c1", "type": "MTLS", "fingerprint": "sha256:" + HEX,
                                         "status": "ACTIVE"})
    assert record.fingerprint == HEX


def test_a_mistyped_fingerprint_selects_nothing_for_revocation():
    # a credential the API lists without a fingerprint must not match a value that is not one
    now = datetime.datetime(2026, 12, 6, tzinfo=datetime.timezone.utc)
    creds = [SimpleNamespace(id="k1", alias="key", status="ACTIVE", fingerprint=None, created=now,
                             expires=now + datetime.timedelta(days=300))]
    targets, _already, missing = revoke.select(creds, fingerprints=["zz:yy"], now=now)
    assert targets == [] and missing == [("fingerprint", "zz:yy")]


def test_verify_refuses_an_expected_fingerprint_that_is_not_one():
    now = datetime.datetime(2026, 12, 6, tzinfo=datetime.timezone.utc)
    with pytest.raises(verify.VerifyError) as caught:
        verify.local_checks(verify.Material(None), now, expected_fingerprint="zz-top")
    assert caught.value.cause == "invalid_input" and "zz-top" in str(caught.value)
