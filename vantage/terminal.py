"""What the CLI prints to a terminal, made safe to print.

Much of what ``vantage`` shows comes from elsewhere: a probed server's HTTP reason phrase
inside a failure detail, an agent's labels, an error message from the coordinator. Any of
them may carry escape sequences that retitle a terminal, move the cursor, hide text or
(with some terminals) do worse. :func:`clean` replaces every control character (C0, DEL,
C1) and the bidirectional overrides that can make a line read differently from what it
holds with ``?``. The ``--json`` output needs none of this: ``json.dumps`` escapes control
characters itself.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: Any) -> str:
    """``str(value)`` with control characters and bidi overrides replaced by ``?``."""
    return _UNSAFE.sub("?", str(value))


def clean_lines(text: str) -> str:
    """Like :func:`clean`, keeping line breaks (for multi-line output)."""
    return "\n".join(clean(line) for line in text.split("\n"))
