"""The README (and the docs it links) stay true to the code: its layout is the tree, its
method tables are the registries, the config table of docs/configuration.md covers every key,
the example entries of docs/methods.md validate and every stage script answers --help."""

from __future__ import annotations

import dataclasses
import importlib.util
import re

import pytest
import yaml

from robustprune.config import Params, params_from_dict
from robustprune.selection.registry import MINERS, SELECTORS
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _layout() -> str:
    return README.split("<!-- layout:start -->")[1].split("<!-- layout:end -->")[0]


def test_layout_names_every_module_and_only_what_exists():
    layout = _layout()
    modules = sorted(p.name for p in (ROOT / "robustprune").iterdir()
                     if p.name != "__init__.py" and not p.name.startswith("__")
                     and (p.suffix == ".py" or p.is_dir()))
    for name in modules:
        shown = name + "/" if (ROOT / "robustprune" / name).is_dir() else name
        assert shown in layout, f"README layout does not mention robustprune/{shown}"
    for line in layout.strip().strip("`").splitlines():
        left = re.split(r"\s{2,}", line.strip())[0]
        base = ROOT / "robustprune" if line.startswith("  ") else ROOT
        for token in left.split(", "):
            if token.endswith((".py", "/", ".yaml")):
                assert (base / token).exists(), f"README layout names {token}: not found"
    for stage in (ROOT / "stages").glob("*.py"):
        assert stage.stem in layout, f"README layout does not mention stage {stage.stem}"


def test_method_tables_are_the_registries():
    for registry in (SELECTORS, MINERS):
        for name, cls in registry.items():
            row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")),
                       None)
            assert row, f"README has no method-table row for {name}"
            for option in dataclasses.fields(cls.Options):
                assert f"`{option.name}` ({option.default!s}".lower() in row.lower(), (
                    f"{name}: option {option.name} with its default missing from the README")


def test_config_table_covers_every_key():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    table = doc.split("\n## Keys\n")[1].split("\n## ")[0]
    for section in dataclasses.fields(Params):
        if section.name in ("methods",):
            assert "`methods.<name>.*`" in table
            continue
        if not dataclasses.is_dataclass(section.type) and section.name == "seeds":
            assert "`seeds`" in table
            continue
        cls = section.default_factory().__class__  # type: ignore[misc]
        for key in dataclasses.fields(cls):
            assert (f"`{section.name}.{key.name}`" in table or f"`{key.name}`" in table
                    or f"{section.name}.{key.name}" in table), f"{section.name}.{key.name}"


def test_paste_ready_entries_in_the_methods_doc_validate():
    text = (ROOT / "docs" / "methods.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, flags=re.S).group(1)
    entries = yaml.safe_load("methods:\n" + block)["methods"]
    params = params_from_dict({"methods": entries})
    assert len(params.methods) == len(entries) >= 5


@pytest.mark.parametrize("stage", sorted(p.stem for p in (ROOT / "stages").glob("*.py")))
def test_every_stage_script_answers_help(stage, capsys):
    spec = importlib.util.spec_from_file_location(f"stage_{stage}", ROOT / "stages" / f"{stage}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    shown = capsys.readouterr().out
    assert done.value.code == 0 and shown.count("Stage ") >= 1
    # every stage that reads params takes --params (publish copies files and reads none)
    assert ("--params" in shown) == (stage != "publish"), shown
