"""Render a report.html in headless Chromium and save a screenshot (PNG).

    python scripts/screenshot_report.py train/quickstart/evaluation/report.html docs/report.png

Uses Debian's ``chromium`` package; where it is missing, installs it with apt-get (as root) unless
``--no-install`` is given. Exit status 3 means no Chromium could be found or installed (tests skip
on it); anything else that fails is status 1. Arabic text needs a font with Arabic glyphs: the
script installs ``fonts-noto-core`` with Chromium when it installs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
PACKAGES = ("chromium", "fonts-noto-core")


def find_browser() -> str | None:
    """The first Chromium-like browser on PATH (``$CHROMIUM`` first)."""
    for name in (os.environ.get("CHROMIUM"), *BROWSERS):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def install() -> str | None:
    """``apt-get install chromium`` (root and apt-get needed); returns the browser, or None with a reason printed."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        print("chromium is not installed and cannot be installed here (needs apt-get and root)", file=sys.stderr)
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        if subprocess.run(command, env=env, capture_output=True).returncode != 0:
            print(f"could not install chromium ({' '.join(command)} failed)", file=sys.stderr)
            return None
    return find_browser()


def screenshot(browser: str, page: Path, out: Path, *, width: int = 1280, height: int = 1600) -> None:
    """Save a ``width`` x ``height`` screenshot of ``page`` to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no first-run state, no shared lock
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                   f"--window-size={width},{height}", f"--screenshot={out.resolve()}", page.resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if not out.is_file():
        raise SystemExit(f"chromium wrote no screenshot (status {result.returncode}): {result.stderr.strip()[-500:]}")


def shrink(out: Path) -> None:
    """Store the PNG with a 256-colour palette (a third of the bytes; text stays sharp), when Pillow is there."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(out) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(out, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the report.html to render")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--small", action="store_true", help="store the PNG with a 256-colour palette (for the README)")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get; exit 3 when chromium is missing")
    args = parser.parse_args()
    if not args.page.is_file():
        print(f"{args.page}: not found", file=sys.stderr)
        return 1
    browser = find_browser() or (None if args.no_install else install())
    if browser is None:
        if args.no_install:
            print("chromium is not installed (apt-get install chromium, or run without --no-install)", file=sys.stderr)
        return 3
    screenshot(browser, args.page, args.out, width=args.width, height=args.height)
    if args.small:
        shrink(args.out)
    print(f"screenshot: {args.out} ({args.out.stat().st_size:,} bytes) from {browser}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
