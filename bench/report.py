"""Shared by the benchmarks: machine facts and writing a section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = Path(__file__).parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nFigures measured by the scripts in `bench/`; each section is rewritten by its script.\n"


def machine() -> str:
    """CPU model, cores, memory and Python version, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(re.findall(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[0])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, IndexError):
        memory = "unknown memory"
    return f"{cpu}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def write_section(name: str, command: str, body: str) -> None:
    """Replace (or add) the section ``name`` of BENCHMARKS.md."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"{start}\n## {name}\n\n- date: {stamp}\n- machine: {machine()}\n- command: `{command}`\n\n"
        f"{body.strip()}\n{end}"
    )
    if start in text:
        text = re.sub(
            re.escape(start) + r".*?" + re.escape(end), lambda _: section, text, flags=re.S
        )
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS.write_text(text, encoding="utf-8")
