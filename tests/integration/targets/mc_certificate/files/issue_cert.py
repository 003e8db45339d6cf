# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helper: write a client certificate signed by a given CA (or a throwaway foreign CA).

    issue_cert.py OUT_CERT CN DAYS_FROM START_DAYS [CA_CERT CA_KEY]

Without CA_CERT/CA_KEY a new self-signed CA is made, which the emulator does not trust.
"""

from __future__ import annotations

import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def main(argv):
    out, common_name, days, start = argv[0], argv[1], int(argv[2]), int(argv[3])
    now = datetime.datetime.now(datetime.timezone.utc)
    if len(argv) > 4:
        with open(argv[4], "rb") as handle:
            ca_cert = x509.load_pem_x509_certificate(handle.read())
        with open(argv[5], "rb") as handle:
            ca_key = serialization.load_pem_private_key(handle.read(), None)
        issuer = ca_cert.subject
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throwaway foreign CA")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=start))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(ca_key, hashes.SHA256()))
    with open(out, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main(sys.argv[1:])
