from __future__ import annotations

import json
import subprocess
import sys

from tests.support.processes import REPO_ROOT, gateway_environment


def segments(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smsgateway", "segments", *args],
        cwd=REPO_ROOT,
        env=gateway_environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_reads_stdin_without_its_trailing_newline() -> None:
    result = segments(stdin="x" * 160 + "\n")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "encoding": "GSM-7",
        "segments": 1,
        "characters": 160,
        "units": 160,
    }


def test_parts_never_split_an_escape_or_a_surrogate_pair() -> None:
    # 152 + 2 + 10 septets: more than one part, and the escape would straddle septet 153.
    gsm = json.loads(segments("--text", "a" * 152 + "€" + "b" * 10, "--parts").stdout)
    assert gsm["segments"] == 2
    assert gsm["parts"] == ["a" * 152, "€" + "b" * 10]
    ucs2 = json.loads(segments("--text", "ä" * 66 + "😀" + "x" * 5, "--parts").stdout)
    assert (ucs2["encoding"], ucs2["units"]) == ("UCS-2", 73)
    assert ucs2["parts"] == ["ä" * 66, "😀" + "x" * 5]


def test_smart_encoding_and_refusals() -> None:
    smart = json.loads(segments("--text", "“Hi” …", "--smart-encoding").stdout)
    assert smart["encoding"] == "GSM-7"
    assert smart["text"] == '"Hi" ...'
    refused = segments("--text", "   ")
    assert refused.returncode == 1
    assert json.loads(refused.stderr)["code"] == "empty_body"
