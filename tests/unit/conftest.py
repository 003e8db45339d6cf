"""Make plain pytest find the collection as ansible_collections.mcdev.credentials.

The build lays the tree out under <build>/ansible_collections/mcdev/credentials;
putting <build> on sys.path lets tests import it by its real name.
"""
import os
import sys

_COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_ANSIBLE_COLLECTIONS_PARENT = os.path.abspath(os.path.join(_COLLECTION_ROOT, "..", "..", ".."))
if os.path.basename(os.path.dirname(os.path.dirname(_COLLECTION_ROOT))) == "ansible_collections":
    if _ANSIBLE_COLLECTIONS_PARENT not in sys.path:
        sys.path.insert(0, _ANSIBLE_COLLECTIONS_PARENT)
