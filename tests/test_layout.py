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
SHIPPED_VOCODER = os.path.join(REPO, "checkpoints", "fregrad-allison-16k")
# lowest first; a module may import from its own layer and the ones before it
LAYERS = [("errors", "atomic", "shipped", "tensorflow_import", "progress"), ("config",), ("data",), ("diffusion",),
          ("models",), ("evaluation",), ("serving",), ("pipelines",), ("inference",), ("training",), ("interop",),
          ("bench",), ("cli",), ("__init__", "convert")]
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
    assert size < 56 * 2 ** 20  # the originals' checkpoints are small models: 48 MB in all once every format is here
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
    shared = target / "share" / "tf-diffwave" / "checkpoints"
    assert sorted(os.listdir(shared / "fregrad-allison-16k")) == sorted(os.listdir(SHIPPED_VOCODER))
    assert not os.path.exists(shared / "fregrad-allison-16k-training")  # the training state stays in the clone


# the folders that know no kind of model: they ask the model's pipeline (tf_diffwave/pipelines) or its Family; the
# families build their own networks and the converters read foreign configs' flags, so they are not among them
KIND_BLIND = ("cli", "inference", "serving", "training", "evaluation", "bench", "diffusion", "data", "config.py")
KIND_QUESTION = re.compile(r"\.autoregressive\b|\bfamily\.kind\b|\b(if|elif|while)\b.*\bunconditional\b"
                           r"|\bunconditional\b.*\belse\b")


def kind_questions(path):
    """The lines of the module at `path` that branch on what kind of model it is (comments and docstrings aside)."""
    found = []
    for number, line in enumerate(open(path), 1):
        code = line.split("#")[0]
        if KIND_QUESTION.search(code) and not code.strip().startswith(('"', "'")):
            found.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    return found


def test_no_module_outside_the_pipelines_and_the_registry_asks_what_kind_a_model_is():
    asked = [hit for layer, path in package_modules() if os.path.relpath(path, PACKAGE).split(os.sep)[0] in KIND_BLIND
             for hit in kind_questions(path)]
    assert asked == []


def test_the_kind_check_sees_a_kind_question(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("x = 1 if model.unconditional else 2\nif family.autoregressive:\n    pass\n# if unconditional\n")
    assert len(kind_questions(str(module))) == 2


def module_imports(path):
    """Every tf_diffwave module the module at `path` imports (dotted), anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tf_diffwave"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tf_diffwave")}
    return found


def modules_under(folder):
    return [os.path.join(root, name) for root, _, names in os.walk(os.path.join(PACKAGE, folder))
            for name in names if name.endswith(".py")]


@pytest.mark.parametrize("folder, forbidden", [
    ("training", "tf_diffwave.models.s4"),           # the trainer knows no S4
    ("diffusion", "tf_diffwave.models"),              # the diffusion core knows no model module
    ("models", "tf_diffwave.diffusion"),              # and the models know no diffusion module
    ("serving", "tf_diffwave.models.s4"),
    ("pipelines", "tf_diffwave.models.s4"),
])
def test_file_level_import_rules(folder, forbidden):
    broken = [(os.path.relpath(path, REPO), name) for path in modules_under(folder)
              for name in module_imports(path) if name == forbidden or name.startswith(forbidden + ".")]
    assert broken == []


def test_config_imports_no_model_module_and_a_config_loads_only_its_own_family():
    assert not [name for name in module_imports(os.path.join(PACKAGE, "config.py"))
                if name.startswith("tf_diffwave.models")]
    code = ("import sys\nfrom tf_diffwave.config import load_config\nload_config(sys.argv[1])\n"
            "print(sorted(m for m in sys.modules if m.startswith('tf_diffwave.models.')))")
    loaded = run_script(code, os.path.join(REPO, "configs", "wavegrad_demo.json"), cwd=REPO).split("'")[1::2]
    assert "tf_diffwave.models.wavegrad" in loaded
    assert not {"tf_diffwave.models.wavenet", "tf_diffwave.models.sashimi", "tf_diffwave.models.ar_sashimi"} & \
        set(loaded)
