"""Where the suite's data lives: the checkout in development, the wheel once installed.

A wheel carries specs/, conformance/, scenarios/ and conftest.py under
``brokercert/_suite`` (see pyproject.toml); an editable install or a checkout
reads them from the repository root, one level above the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def suite_root() -> Path:
    """The folder holding specs/, conformance/, scenarios/ and conftest.py."""
    bundled = _PACKAGE / "_suite"
    if (bundled / "specs").is_dir():
        return bundled
    return _PACKAGE.parent


def specs_root() -> Path:
    return suite_root() / "specs"
