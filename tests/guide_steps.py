"""The `<!-- guide-step: NAME -->` blocks of docs/operating.md, by name: the commands and files
the guide's tests run or write as written."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operating.md"


def guide_steps(src: Path | None = None) -> dict[str, str]:
    """The steps of this checkout's guide, or of the release checked out in `src`."""
    text = (GUIDE if src is None else src / GUIDE.relative_to(GUIDE.parents[1])).read_text()
    return dict(re.findall(r"<!-- guide-step: ([\w-]+) -->\n```\w*\n(.*?)\n```", text, re.S))
