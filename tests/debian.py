"""Debian packages the tests need on a clean machine (as CI starts from): apt-get installs what is missing.

As root, or through passwordless ``sudo``. A test that needs a program installs it rather than skipping:
a skipped check is one that a clean machine never runs.
"""

from __future__ import annotations

import os
import subprocess


def apt_install(*packages: str) -> None:
    """``apt-get install`` the packages (after an ``apt-get update``); raises if apt-get fails."""
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", *packages], check=True, env=env, timeout=900)
