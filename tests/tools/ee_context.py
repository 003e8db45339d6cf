"""`make ee`: the build context of an execution environment with this checkout's collection in it.

Builds the collection tarball (as `make dist` does), puts it beside a copy of extensions/ee/execution-environment.yml
under the name that file installs, and runs `ansible-builder create`, which needs no container engine. Build the
image from the context it prints, with `podman build -f Containerfile -t <name> <context>`.

Usage: python tests/tools/ee_context.py OUT_DIR   (from the collection root; OUT_DIR is emptied first)
"""

import glob
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFINITION = os.path.join(ROOT, "extensions", "ee", "execution-environment.yml")
TARBALL = "mcdev-credentials.tar.gz"  # the name the definition's additional_build_files takes


def tool(name):
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.path.exists(beside) else shutil.which(name)


def build_context(out_dir):
    """The context folder (with its Containerfile) made from this checkout under out_dir."""
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    dist = os.path.join(out_dir, "dist")
    os.makedirs(dist)
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--output-path", dist, ROOT], check=True,
                   stdout=subprocess.DEVNULL)
    (built,) = glob.glob(os.path.join(dist, "mcdev-credentials-*.tar.gz"))
    shutil.copy(built, os.path.join(out_dir, TARBALL))
    shutil.copy(DEFINITION, out_dir)
    context = os.path.join(out_dir, "context")
    subprocess.run([tool("ansible-builder"), "create", "-f", os.path.join(out_dir, os.path.basename(DEFINITION)),
                    "-c", context, "--output-filename", "Containerfile"], check=True, stdout=subprocess.DEVNULL)
    return context


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print("The build context: %s (podman build -f Containerfile %s)" % ((build_context(sys.argv[1]),) * 2))
