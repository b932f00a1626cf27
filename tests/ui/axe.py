"""axe-core in the browser: the accessibility rules a page breaks, as short lines to assert on.

The script ships with the axe-playwright-python package (no download at run time). The console's
Content-Security-Policy refuses injected scripts, so the browser context that runs it must be
made with `bypass_csp=True`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import axe_playwright_python

AXE_SCRIPT = Path(axe_playwright_python.__file__).with_name("axe.min.js")

_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => v.id + ' (' + v.impact + '): ' +
    v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', '));
}"""


def violations(page: Any) -> list[str]:
    """The axe-core violations of the page as it is now (empty: none)."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(content=AXE_SCRIPT.read_text())
    found: list[str] = page.evaluate(_RUN)
    return found
