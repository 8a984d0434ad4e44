"""The package's layout: each folder one layer that imports only from its own or lower layers; configs that load
without TensorFlow; the parity fixtures inside the repository; an install that holds every subpackage."""

import ast
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import FIXTURES, REPO, run_script

PACKAGE = os.path.join(REPO, "tf_diffwave")
# lowest first; a module may import from its own layer and the ones before it
LAYERS = [("errors", "shipped", "quiet", "progress"), ("data",), ("diffusion",), ("models",), ("config",),
          ("serving",), ("inference",), ("evaluation",), ("training",), ("interop",), ("bench",), ("cli",),
          ("__init__", "convert")]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def package_modules():
    """(layer of the module, its path) for every module of the package."""
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, PACKAGE).split(os.sep)[0].removesuffix(".py"), path


def imported_layers(path):
    """The layers of tf_diffwave that the module at `path` imports (anywhere in it, functions included)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module == "tf_diffwave":
            names = [f"tf_diffwave.{alias.name}" for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("tf_diffwave.")}
    return found


def test_every_module_sits_in_a_known_layer():
    assert {layer for layer, _ in package_modules()} <= set(RANK)


def test_modules_import_only_from_their_own_or_lower_layers():
    upward = [(os.path.relpath(path, REPO), layer) for own, path in package_modules()
              for layer in imported_layers(path) if RANK[layer] > RANK[own]
              and not path.endswith("__main__.py")]  # `python -m tf_diffwave.bench` runs the command
    assert upward == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tf_diffwave.cli.common import run\n")
    assert imported_layers(str(module)) == {"cli"}


def test_configs_load_and_validate_without_tensorflow():
    code = ("import sys\nfrom tf_diffwave.config import load_config\n"
            "for name in sys.argv[1:]:\n    load_config(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    configs = sorted(os.path.join(REPO, "configs", name) for name in os.listdir(os.path.join(REPO, "configs")))
    assert run_script(code, *configs, cwd=REPO).strip() == "[]"


def test_the_parity_fixtures_are_in_the_repository_with_their_readmes():
    folders = sorted(os.listdir(FIXTURES))
    assert {"lmnt-diffwave", "wavegrad", "priorgrad", "rf5-diffwave", "simple-sashimi"} <= set(folders)
    assert all(os.path.isfile(os.path.join(FIXTURES, folder, "README.md")) for folder in folders)
    size = sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(FIXTURES) for name in names)
    assert size < 40 * 2 ** 20
    tests = [os.path.join(folder, name) for folder, _, names in os.walk(os.path.join(REPO, "tests"))
             for name in names if name.endswith(".py")]
    outside = re.compile(r'\.\.["\']?,?\s*["\']?/?shared')  # a path to the shared folder beside the clone
    assert [path for path in tests if outside.search(open(path).read())] == []


@pytest.mark.slow
def test_a_plain_install_holds_every_subpackage(tmp_path):
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                              str(target), REPO], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    code = ("import pkgutil, importlib, tf_diffwave\n"
            "assert tf_diffwave.__file__.startswith(%r), tf_diffwave.__file__\n"
            "names = [m.name for m in pkgutil.walk_packages(tf_diffwave.__path__, 'tf_diffwave.')]\n"
            "for name in names:\n    importlib.import_module(name) if not name.endswith('__main__') else None\n"
            "print(len(names))") % str(target)
    out = run_script(code, cwd=tmp_path, env={"PYTHONPATH": str(target)})
    expected = sum(name.endswith(".py") for _, _, names in os.walk(PACKAGE) for name in names)
    assert int(out.split()[-1]) == expected - 1  # every module but the package's own __init__
