"""The file to give ``spark-submit``: ``spark-submit [options] <path of this file> INPUT --out OUTDIR``.

Runs ``neckcheck screen --engine spark`` with the master, executors and configuration of spark-submit
(the executors need neckcheck installed, e.g. the same virtual environment on every node).
"""

from __future__ import annotations

import sys

from service.cli import main

if __name__ == "__main__":
    sys.exit(main(["screen", *sys.argv[1:], "--engine", "spark"]))
