"""``python -m reattach``: the same as the ``reattach`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
