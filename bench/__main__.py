"""``python -m reattach_bench``: the same as ``reattach bench``."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
