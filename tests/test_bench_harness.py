"""The benchmark harness's results file and the README generator (no timing is asserted here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_readme  # noqa: E402
import harness  # noqa: E402


def test_record_writes_ratio_target_and_verdict_and_replaces_by_name(tmp_path, capsys):
    path = tmp_path / "results.json"
    harness.record("report 1M", 1.2, "s", anchor="sqlite3", anchor_value=1.0, target="ratio <= 1.3", path=path)
    harness.record("report 10k", 0.4, "s", anchor="llm", anchor_value=None, target="value <= 0.35", path=path)
    harness.record("report 1M", 1.5, "s", anchor="sqlite3", anchor_value=1.0, target="ratio <= 1.3", path=path)
    runs = json.loads(path.read_text())["runs"]
    assert list(runs) == ["report 1M", "report 10k"]
    assert (runs["report 1M"]["value"], runs["report 1M"]["ratio"], runs["report 1M"]["met"]) == (1.5, 1.5, False)
    assert (runs["report 10k"]["ratio"], runs["report 10k"]["met"]) == (None, False)  # an absolute target
    harness.record("skipped anchor", 2.0, "s", anchor="ccusage", anchor_value=None, target="ratio <= 2", path=path)
    assert json.loads(path.read_text())["runs"]["skipped anchor"]["met"] is None  # cannot be judged
    assert "anchor ccusage: skipped" in capsys.readouterr().out


def test_readme_section_is_generated_between_markers_and_idempotent(tmp_path):
    results = tmp_path / "results.json"
    harness.record("tier report --all, 1M calls, fresh process", 1.1, "s", anchor="sqlite3 CLI", anchor_value=1.0,
                   target="ratio <= 1.3", path=results)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Performance\n\nintro text\n\n## Next\nmore\n")
    assert bench_readme.main(["--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.index("## Performance") < text.index(bench_readme.START) < text.index("intro text")
    assert "| tier report --all, 1M calls, fresh process | 1.10 s | sqlite3 CLI: 1.00 s | 1.10 | ratio <= 1.3 | yes | - |" in text
    assert text.endswith("## Next\nmore\n")
    assert bench_readme.main(["--results", str(results), "--readme", str(readme), "--check"]) == 0
    harness.record("tier report --all, 1M calls, fresh process", 1.4, "s", anchor="sqlite3 CLI", anchor_value=1.0,
                   target="ratio <= 1.3", path=results)
    assert bench_readme.main(["--results", str(results), "--readme", str(readme), "--check"]) == 1
    bench_readme.main(["--results", str(results), "--readme", str(readme)])
    text = readme.read_text()
    assert text.count(bench_readme.START) == 1 and "| **no** |" in text and "1.10 s" not in text
