"""Variants of the Developers API the emulator can serve (``--variant NAME``): where a real API might differ
from the emulator's own routes and fields, so that a client's contract file can be shown at work. The model
is the same; a variant only changes names at the HTTP boundary."""

DEFAULT = "default"
VARIANTS = {
    DEFAULT: {"list_path": "/developers/projects/<project_id>/credentials", "alias_field": "alias"},
    # A third-party client names the alias "description"; the list lives under another path.
    "third-party": {"list_path": "/developers/projects/<project_id>/keys", "alias_field": "description"},
}


def shape_of(name):
    """The variant's names; ValueError naming the known variants for any other name."""
    if name not in VARIANTS:
        raise ValueError("--variant %r is not known; use one of %s" % (name, ", ".join(sorted(VARIANTS))))
    return VARIANTS[name]
