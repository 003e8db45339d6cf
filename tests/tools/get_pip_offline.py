"""Offline stand-in for the get-pip script ansible-test downloads.

ansible-test creates each sanity venv without pip and then runs get-pip.py to
bootstrap it; that download is unreachable here. This script bootstraps pip
from the stdlib's bundled wheel and installs what ansible-test asked for.
"""
import subprocess
import sys

ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + ARGS))
