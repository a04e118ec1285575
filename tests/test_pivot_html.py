"""`siem pivot --html`: the incident timeline page, rendered by a real headless Chromium.

Checks what a reader sees (entity, per-dataset summary, alerts, timeline rows, a working filter),
that a `<script>` written into a log line stays text, and that the chart area of a screenshot is
not blank. Chromium is Debian's `chromium` package; the PNG is decoded with zlib.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from siem.cli import main
from siem.pivot.render_html import CHART_H, CHART_W, PAD

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
IP = "203.0.113.66"
LINES = [
    f'{IP} - - [10/Oct/2023:13:55:36 +0000] "GET /login?next=<script>alert(1)</script> HTTP/1.1" 200 12 "-" "curl/8.0"',
    f'{IP} - bob [10/Oct/2023:14:05:00 +0000] "POST /admin HTTP/1.1" 403 9 "-" "{HOSTILE}"',
    f'{IP} - bob [11/Oct/2023:09:00:00 +0000] "GET /ok HTTP/1.1" 200 2 "-" "curl/8.0"',
]
AUTH = f"Oct 10 13:56:01 web1 sshd[42]: Failed password for invalid user {HOSTILE} from {IP} port 5555 ssh2\n"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium", pytrace=False)
    return path


def png_pixels(data: bytes, max_rows: int) -> tuple[int, int, list[bytes]]:
    """Width, channels and the first RGB(A) rows of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(min(height, max_rows)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, channels, rows


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("html")
    (root / "access.log").write_text("\n".join(LINES) + "\n")
    (root / "auth.log").write_text(AUTH)
    out = root / "timeline.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SIEM_OPENSEARCH_URL", raising=False)
        mp.setenv("SIEM_DATA_DIR", str(root / "data"))
        assert main(["load", str(root / "access.log"), "--type", "nginx.access"]) == 0
        assert main(["load", str(root / "auth.log"), "--type", "linux.auth"]) == 0
        _store_alert(root / "data")
        assert main(["pivot", "--ip", IP, "--html", str(out), "--format", "json"]) == 0
    browser = chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    shot = root / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,900", out.as_uri()],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return {"html": out.read_text(), "dom": dom, "png": shot.read_bytes()}


def _store_alert(data_dir: Path) -> None:
    """An alert naming the IP, as the detection runner stores it (its state table, its document shape)."""
    from siem.detect.state import EmbeddedState
    from siem.sinks.embedded import EmbeddedStore

    store = EmbeddedStore(data_dir)
    doc = {
        "@timestamp": "2023-10-10T14:00:00Z",
        "rule": {"id": "r-1", "name": "Admin probe", "level": "high"},
        "related": {"ip": [IP]},
        "alert": {"id": "a-1", "status": "open", "last_seen": "2023-10-10T14:05:00Z", "count": 1, "reason": "x"},
    }
    EmbeddedState(store.db).save([doc], {})
    store.close()


def test_page_shows_entity_summary_alert_and_every_row(page) -> None:
    dom = str(page["dom"])
    assert "Incident timeline: IP 203.0.113.66" in dom
    assert "<td>nginx.access</td><td>3</td>" in dom.replace(
        '<span class="swatch" style="background:#ff7f0e"></span>', ""
    )
    assert "Admin probe" in dom
    assert dom.count('<tr data-dataset="') == 4
    assert "bob" in dom  # --expand is part of the page: users seen with the IP


def test_script_in_a_log_value_is_inert_text(page) -> None:
    html, dom = str(page["html"]), str(page["dom"])
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in html
    assert "<title>Incident timeline: IP 203.0.113.66</title>" in dom  # the injected script never ran
    assert dom.count("<script>") == 1  # only the page's own filter script


def test_filters_run_in_the_browser(page) -> None:
    assert '<span id="shown">4</span>' in str(page["dom"])  # set by the filter script after load


def test_no_external_assets(page) -> None:
    html = str(page["html"]).replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert re.findall(r"<[a-zA-Z][^>]*\s(?:src|href)\s*=", html) == []  # no element loads anything
    for needle in ("http://", "https://", "<link", "@import", "url("):
        assert needle not in html, needle


def test_chart_area_of_the_screenshot_is_not_blank(page) -> None:
    width, channels, rows = png_pixels(bytes(page["png"]), max_rows=60 + CHART_H + 120)
    assert width == 1200
    # the chart sits under the first headings; count coloured (non-grey) pixels in the band where it is
    coloured = 0
    for row in rows[60 : 60 + CHART_H + 120]:
        for x in range(PAD, min(width, CHART_W), 2):
            r, g, b = row[x * channels], row[x * channels + 1], row[x * channels + 2]
            if max(r, g, b) - min(r, g, b) > 60:
                coloured += 1
    assert coloured > 200, f"only {coloured} coloured pixels where the chart should be"
