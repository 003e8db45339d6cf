#!/usr/bin/env bash
# The rotation role against the emulator on a fleet of local and (as root) SSH namespace hosts.
set -euo pipefail
cd "$(dirname "$0")"
exec python -m pytest -p no:cacheprovider -q -x test_rotation.py test_portal_rotation.py "$@"
