"""Fail if the installed litellm is a known-compromised release or site-packages has an unexpected .pth.

litellm 1.82.7 and 1.82.8 (PYSEC-2026-2) shipped a .pth file that runs at every Python start and
steals credentials. The locks pin a reviewed version with hashes; this check catches an
environment that drifted anyway. Exit 0 when clean, 1 with one line per finding otherwise.
"""

from __future__ import annotations

import site
import sys
from importlib import metadata
from pathlib import Path

COMPROMISED = {"litellm": {"1.82.7", "1.82.8"}}
# .pth files that the packages in our locks install, and what pip/setuptools/editable installs add
EXPECTED_PTH = {"distutils-precedence.pth", "_virtualenv.pth"}
EXPECTED_PTH_PREFIXES = ("__editable__.", "_editable_impl_tiercli", "_tiercli", "tiercli")


def find_problems(site_dirs, version_of=metadata.version) -> list[str]:
    problems = []
    for name, bad in COMPROMISED.items():
        try:
            version = version_of(name)
        except metadata.PackageNotFoundError:
            continue
        if version in bad:
            problems.append(f"{name} {version} is a known-compromised release: reinstall from requirements/runtime.txt")
    for d in sorted({Path(p) for p in site_dirs}):
        for pth in sorted(d.glob("*.pth")):
            if pth.name in EXPECTED_PTH or pth.name.startswith(EXPECTED_PTH_PREFIXES):
                continue
            problems.append(f"unexpected .pth file {pth} (runs code at every Python start): review and remove it")
    return problems


def main() -> int:
    problems = find_problems(site.getsitepackages())
    for line in problems:
        print(f"supply-chain check: {line}", file=sys.stderr)
    if not problems:
        print(f"supply-chain check: ok (litellm {metadata.version('litellm')}, no unexpected .pth files)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
