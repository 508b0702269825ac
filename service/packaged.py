"""Where the data the service reads at run time lives: inside the installed package.

``service/data/`` holds the rule table, the codes, the CDS Hooks schemas (``schemas/``) and the API
description (``openapi.yaml``). In the repository they are symlinks to the one copy at the top of the tree;
the wheel build copies their contents in (pyproject.toml ``package-data``), so an installed package needs
neither the checkout nor ``PYTHONPATH``. Found through ``importlib.resources`` so it holds wherever pip put
the package. Installed wheels are plain directories, so the result is an ordinary ``Path`` that settings
can name and override (``NECKCHECK_RULES_FILE``, ``NECKCHECK_CODES_FILE``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DATA_DIR = Path(str(files("service") / "data"))
SCHEMAS_DIR = DATA_DIR / "schemas"
OPENAPI_FILE = DATA_DIR / "openapi.yaml"
UI_STATIC = Path(str(files("service") / "app_ui" / "static"))  # the pages' CSS (and the app's files)
