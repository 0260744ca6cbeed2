"""Render report templates to HTML, and HTML to PDF with Debian's headless Chromium.

Chromium prints exactly what a browser shows (fonts with Vietnamese diacritics,
SVG charts, page breaks from CSS), works offline and is already on the machine for
the console's browser tests, so no second HTML engine is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from govsoc.errors import GovsocError

TEMPLATES = Path(__file__).with_name("templates")


class ReportError(GovsocError):
    """A report cannot be built or rendered."""


def _date(value: Any, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        try:
            from zoneinfo import ZoneInfo

            value = value.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
        except (ImportError, ValueError):
            pass
        return value.strftime(fmt)
    return str(value)


def _minutes(value: Any) -> str:
    if value is None:
        return "—"
    minutes = float(value)
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


_ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_ENV.filters["date"] = _date
_ENV.filters["minutes"] = _minutes


def render_html(template: str, **values: Any) -> str:
    return _ENV.get_template(template).render(**values)


def find_chromium(configured: str | None = None) -> str:
    for name in (configured, "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    raise ReportError("PDF output needs Chromium (Debian package 'chromium'); "
                      "set reports.chromium to its path, or use --format html")


def html_to_pdf(html: str, target: Path, chromium: str | None = None,
                timeout: float = 120) -> Path:
    """Print ``html`` to ``target`` (A4, backgrounds, no browser header/footer)."""
    binary = find_chromium(chromium)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="govsoc-pdf-") as work:
        source = Path(work) / "report.html"
        source.write_text(html, encoding="utf-8")
        out = Path(work) / "report.pdf"
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                   "--disable-background-networking", "--no-pdf-header-footer",
                   f"--user-data-dir={work}/profile", f"--print-to-pdf={out}",
                   source.as_uri()]
        env = {**os.environ, "HOME": work}
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the PDF within {timeout:.0f}s") from None
        if not out.is_file() or out.stat().st_size == 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise ReportError(f"Chromium could not print the PDF (exit {done.returncode}): "
                              + " | ".join(detail))
        shutil.move(str(out), target)
    return target


def write_report(html: str, target: Path, fmt: str, chromium: str | None = None,
                 timeout: float = 120) -> Path:
    target = Path(target)
    if fmt == "pdf":
        return html_to_pdf(html, target, chromium, timeout)
    if fmt != "html":
        raise ReportError(f"unknown report format {fmt!r} (html or pdf)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target
