"""``python -m tests.emulator --port 0 --state FILE --ready-file FILE`` (from the collection root)."""
import sys

from .server import main

sys.exit(main())
