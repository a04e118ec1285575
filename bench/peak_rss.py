"""`siem` in a child process that reports its own peak RSS, for the memory benchmarks and tests.

The child writes its VmHWM (the peak of its own process image) to a file as it exits: wait4's
ru_maxrss would also count the pages it shared with the (often large) parent between fork and exec.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

CHILD = (
    "import sys\n"
    "from siem.cli import main\n"
    "peak = sys.argv.pop(1)\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "finally:\n"
    "    hwm = next(x for x in open('/proc/self/status') if x.startswith('VmHWM:')).split()[1]\n"
    "    open(peak, 'w').write(hwm)\n"
    "sys.exit(code)\n"
)


def run_siem(args: list[str], peak_file: Path, **run: Any) -> tuple[subprocess.CompletedProcess, int]:
    """``siem ARGS`` in a child (``subprocess.run`` keywords pass through); its peak RSS in KiB."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(peak_file), *args], check=False, **run)
    return proc, int(peak_file.read_text())
