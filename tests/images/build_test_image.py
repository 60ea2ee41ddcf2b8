"""Builds the podman image the tests of driver `podman` use, once per machine: Debian
bookworm with rpm, dnf and dnf-plugins-core, made by mmdebstrap from Debian's packages
(the only registry this machine reaches) and imported into podman under `IMAGE`.

Run by `make test` before pytest (it downloads packages; the tests themselves stay on
loopback). Change `IMAGE`'s tag whenever the recipe changes, so machines rebuild it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGE = "localhost/conveyor-test-builder:bookworm-2"
PACKAGES = ("rpm", "dnf", "dnf-plugins-core")
MIRROR = "http://deb.debian.org/debian"
# Debian's rpm keeps its database in ~/.rpmdb; a CentOS image keeps it in /var/lib/rpm, and
# the build user must see what root installed there (a database made now, readable by all).
CUSTOMIZE = (
    'mkdir -p "$1/etc/rpm" && echo "%_dbpath /var/lib/rpm" > "$1/etc/rpm/macros.dbpath"'
    ' && chroot "$1" rpm --initdb'
)


def main() -> int:
    if shutil.which("podman") is None or shutil.which("mmdebstrap") is None:
        print("podman or mmdebstrap missing: no test image (podman tests will skip)")
        return 0
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode == 0:
        return 0
    print(f"building {IMAGE} with mmdebstrap (once per machine)", flush=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-image-") as scratch:
        tarball = Path(scratch) / "root.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=essential",
                f"--include={','.join(PACKAGES)}",
                f"--customize-hook={CUSTOMIZE}",
                "bookworm",
                str(tarball),
                MIRROR,
            ],
            check=True,
        )
        subprocess.run(["podman", "import", "--quiet", str(tarball), IMAGE], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
