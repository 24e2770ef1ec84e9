"""The package's layering holds: imports only point down, no package cycles, no Ray in the core."""

import subprocess
import sys
import textwrap

from zsrec_ray.tools import layers


def test_the_package_has_no_upward_import_cycle_or_ray_in_the_core():
    assert layers.check() == []


def test_layers_cli_lists_dependencies_and_exits_zero():
    out = subprocess.run([sys.executable, "-m", "zsrec_ray.tools.layers"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "experiments  -> training" in out.stdout and "0 problem(s)" in out.stdout


def _tree(tmp_path, files: dict[str, str]):
    root = tmp_path / "zsrec_ray"
    for rel, src in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(src))
    return root


def test_checker_reports_upward_imports_cycles_and_ray_in_the_core(tmp_path):
    root = _tree(tmp_path, {
        "models/base.py": """
            def fit():
                from zsrec_ray.training.loop import train  # lazy, still upward
            """,
        "training/loop.py": "from zsrec_ray.models.base import fit\n",
        "ranking/evaluator.py": "import ray\nfrom ..data import splits\n",
        "data/splits.py": "x = 1\n",
    })
    problems = layers.check(root)
    assert any(p.startswith("upward import models -> training") and "models/base.py:3" in p for p in problems)
    assert "cycle between packages: models <-> training" in problems
    assert any("Ray imported by the core" in p and "ranking/evaluator.py:1" in p for p in problems)
    # the relative import resolves to ranking -> data, which points down: not a problem
    assert not any("ranking -> data" in p for p in problems)


def test_checker_accepts_a_clean_tree(tmp_path):
    root = _tree(tmp_path, {"models/base.py": "from zsrec_ray.ranking.topk import masked_topk\n",
                            "ranking/topk.py": "import numpy\n"})
    assert layers.check(root) == []
