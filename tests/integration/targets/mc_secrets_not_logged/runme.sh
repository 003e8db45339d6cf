#!/usr/bin/env bash
# Run mc_csr and mc_keystore at -vvvv with --diff, then prove that neither
# the passphrases nor any line of the private keys reached the log.
set -euo pipefail

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ansible-playbook -i "${INVENTORY_PATH:-inventory}" -vvvv --diff -e "work=$work" secrets.yml "$@" > "$work/run.log" 2>&1 || {
    cat "$work/run.log"; exit 1; }

# Secrets to look for: both passphrases and every base64 line of each key file.
# The key files are written by the play itself (plain PKCS#8 and PKCS#1 exports).
{
    printf '%s\n' "Secret-CSR-Pass-71f3" "Secret-P12-Pass-0c9e"
    for key in "$work/plain-pkcs8.pem" "$work/plain-pkcs1.pem" "$work/key.pem"; do
        grep -v -- '-----' "$key"
    done
} > "$work/secrets.txt"

test "$(wc -l < "$work/secrets.txt")" -gt 40  # the exports really happened

if grep -F -f "$work/secrets.txt" "$work/run.log"; then
    echo "FAIL: a passphrase or key material appears in the -vvvv log" >&2
    exit 1
fi
# Positive control: the CSR is public and returned (return_content), so its lines
# must be found by the same grep; otherwise the search above proves nothing.
grep -q -F "$(sed -n 2p "$work/request.csr")" "$work/run.log"
echo "OK: no secrets in $(wc -l < "$work/run.log") lines of -vvvv output"
