"""A local stand-in for the Mastercard Developers API, built to docs/dev/contracts.md.

Start it with ``python -m tests.emulator --port 0 --state FILE --ready-file FILE``
from the collection root; tests use ``harness.Emulator``.
"""
