"""The `<!-- guide-step: NAME -->` blocks of docs/operating.md, by name: the commands and files
the guide's tests run or write as written."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operating.md"


def guide_steps() -> dict[str, str]:
    text = GUIDE.read_text()
    return dict(re.findall(r"<!-- guide-step: ([\w-]+) -->\n```\w*\n(.*?)\n```", text, re.S))
