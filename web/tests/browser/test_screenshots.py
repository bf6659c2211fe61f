"""Where the browser tests save their screenshots: a folder the tests own and git ignores, so a
run never rewrites the curated, tracked copies in docs/screenshots/ (issue 14)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from usage.tests.test_dashboard_browser import SCREENSHOT as DASHBOARD_SCREENSHOT
from web.tests.browser.conftest import BASE_DIR, SCREENSHOTS


def _ignored_by_git(path: Path) -> bool:
    # `git check-ignore` answers 0 for an ignored path, 1 for one git would track.
    result = subprocess.run(["git", "check-ignore", "--quiet", "--no-index", str(path)], cwd=BASE_DIR, check=False)
    return result.returncode == 0


@pytest.mark.parametrize("path", [SCREENSHOTS / "chat-phone.png", DASHBOARD_SCREENSHOT], ids=["browser", "dashboard"])
def test_screenshots_are_saved_where_git_does_not_track_them(path: Path) -> None:
    assert BASE_DIR / "docs" not in path.parents
    assert _ignored_by_git(path)
