"""Tests for robustprune.config: defaults, YAML loading, one-line ConfigError messages naming
the key for every kind of bad value, cross-key checks and the fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from robustprune.config import (
    ConfigError,
    Params,
    as_dict,
    load_params,
    params_from_dict,
)
from robustprune.pipeline import fingerprint


def test_defaults():
    p = params_from_dict({})
    assert p == Params()
    assert p.seeds == (0,) and p.data.seed == 0
    assert (p.data.name, p.data.val_size, p.data.train_size) == ("fashion-mnist", 5000, 0)
    assert (p.model.arch, p.model.wrn_depth, p.model.wrn_width) == ("smallcnn", 28, 10)
    assert (p.attack.norm, p.attack.eps, p.attack.name) == ("linf", 0.1, "pgd")
    assert (p.attack.alpha, p.attack.steps) == (0.02, 10)
    assert (p.objective.name, p.objective.beta) == ("pgd-at", 6.0)
    assert (p.train.epochs, p.train.batch_size, p.train.schedule) == (1, 128, "onecycle")
    assert p.methods == {}
    assert (p.eval.pgd_steps, p.eval.batch_size) == (20, 500)


def test_partial_section_keeps_other_defaults():
    p = params_from_dict({"attack": {"eps": 0.3}})
    assert p.attack.eps == 0.3
    assert p.attack.steps == 10 and p.attack.norm == "linf"


def test_load_params_from_yaml(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text(
        "seeds: [3, 1]\n"
        "data:\n  seed: 2\n  name: npz\n  path: /tmp/d.npz\n  val_size: 10\n"
        "model:\n  arch: wideresnet\n  wrn_depth: 16\n  wrn_width: 2\n"
        "attack:\n  norm: l2\n  eps: 1   # int accepted for a float\n  name: fgsm-rs\n"
        "objective:\n  name: trades\n  beta: 1.5\n"
        "train:\n  epochs: 0\n  lr: 0.1\n"
        "methods:\n  r: {selector: random-online, fraction: 0.25}\n"
    )
    p = load_params(f)
    assert p.seeds == (3, 1) and p.data.seed == 2
    assert (p.data.name, p.data.path, p.data.val_size) == ("npz", "/tmp/d.npz", 10)
    assert (p.model.arch, p.model.wrn_depth, p.model.wrn_width) == ("wideresnet", 16, 2)
    assert (p.attack.norm, p.attack.name) == ("l2", "fgsm-rs")
    assert p.attack.eps == 1.0 and isinstance(p.attack.eps, float)
    assert (p.objective.name, p.objective.beta) == ("trades", 1.5)
    assert (p.train.epochs, p.train.lr) == (0, 0.1)
    assert p.warmup == Params().warmup
    assert (p.method("r").selector, p.method("r").fraction) == ("random-online", 0.25)


def test_load_params_empty_file_gives_defaults(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("# nothing\n")
    assert load_params(f) == Params()


@pytest.mark.parametrize(("raw", "key"), [
    ({"trainng": {"epochs": 1}}, "trainng"),                      # unknown section
    ({"train": {"epoch": 1}}, "train.epoch"),                     # unknown key
    ({"train": {"epochs": "3"}}, "train.epochs"),                 # string for int
    ({"data": {"seed": True}}, "data.seed"),                      # bool for int
    ({"seeds": 0}, "seeds"),                                      # scalar for list
    ({"seeds": []}, "seeds"),                                     # empty list
    ({"seeds": [0, 0]}, "seeds"),                                 # repeated seed
    ({"seeds": [0, -1]}, "seeds[1]"),                             # out of range item
    ({"eval": {"eps_factors": [1.0, 0]}}, "eval.eps_factors[1]"),
    ({"train": {"batch_size": 32.0}}, "train.batch_size"),        # float for int
    ({"attack": {"eps": [0.1, 0.2]}}, "attack.eps"),              # list for float
    ({"objective": {"beta": False}}, "objective.beta"),           # bool for float
    ({"attack": {"eps": float("nan")}}, "attack.eps"),            # not finite
    ({"attack": {"name": 3}}, "attack.name"),                     # int for str
    ({"attack": {"eps": -0.01}}, "attack.eps"),
    ({"attack": {"alpha": 0}}, "attack.alpha"),
    ({"attack": {"steps": 0}}, "attack.steps"),
    ({"attack": {"norm": "l1"}}, "attack.norm"),
    ({"methods": {"m": {"fraction": 0}}}, "methods.m.fraction"),
    ({"methods": {"m": {"fraction": 1.5}}}, "methods.m.fraction"),
    ({"train": {"epochs": -1}}, "train.epochs"),
    ({"train": {"momentum": 1.1}}, "train.momentum"),
    ({"warmup": {"lr": 0.0}}, "warmup.lr"),
    ({"data": {"name": "imagenet"}}, "data.name"),
    ({"model": {"arch": "vit"}}, "model.arch"),
    ({"model": {"arch": "wideresnet", "wrn_depth": 27}}, "model.wrn_depth"),
    ({"data": {"name": "npz"}}, "data.path"),
    ({"data": {"name": "folder", "path": ""}}, "data.path"),
    ({"attack": {"norm": "linf", "eps": 1.5}}, "attack.eps"),
    ({"methods": {"m": {"selector": "craig"}}}, "methods.m.selector"),
    ({"methods": {"m": {"miner": "bt"}}}, "methods.m.miner"),
    ({"methods": {"m": {"gamma": 0.5}}}, "methods.m.gamma"),            # not this miner's
    ({"methods": {"m": {"miner": "bullettrain", "gamma": 2}}}, "methods.m.gamma"),
    ({"methods": {"m": {"selector": "prune", "score": "loss"}}}, "methods.m.score"),
    ({"methods": {"m": {"selector": "glister", "features": True}}}, "methods.m.features"),
    ({"methods": {"m": {"attack": "cw"}}}, "methods.m.attack"),
    ({"methods": {"m m": {}}}, "methods.m m"),
    ({"methods": {"m": {"selector": ["prune"]}}}, "methods.m.selector"),   # not a string
    ({"methods": {"m": {"miner": {}}}}, "methods.m.miner"),
    ({"methods": {"m": {"attack": "n-fgsm", "alpha": 0.5}}}, "methods.m.alpha"),  # fixed: eps
    ({"methods": {"m": {"attack": "fgsm-rs", "steps": 5}}}, "methods.m.steps"),   # one step
    ({"methods": {"m": {"fraction": 0.3}}}, "methods.m.fraction"),  # full trains on all data
    ({"data": {"val_size": 0}, "methods": {"g": {"selector": "glister"}}}, "data.val_size"),
    ({"attack": {"eps": 0}}, "attack.eps"),
    ({"methods": {"m": 3}}, "methods.m"),
    ({"methods": [1]}, "methods"),
    ({"data": None}, "data"),
    ({"eval": ["n_clean"]}, "eval"),
])
def test_rejected_with_one_line_message_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as info:
        params_from_dict(raw)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(key), msg


@pytest.mark.parametrize(("raw", "shown"), [
    ({"attack": {"alpha": 0}}, "> 0"),
    ({"methods": {"m": {"fraction": 1.5}}}, "<= 1"),
    ({"data": {"name": "imagenet"}}, "fashion-mnist"),
    ({"methods": {"m": {"selector": "craig"}}}, "random-online"),
    ({"methods": {"m": {"gamma": 0.5}}}, "allowed: selector, fraction, miner, attack, alpha, "
                                         "steps, budget, ema$"),
    ({"methods": {"m": {"miner": "bullettrain", "x": 1}}}, "gamma, robust_steps"),
    ({"methods": {"m": {"attack": "cw"}}}, 'must be one of "", fgsm-rs, n-fgsm, pgd'),
    ({"methods": {"m": {"attack": "fgsm-rs", "steps": 5}}}, "the fgsm-rs attack fixes its steps"),
    ({"methods": {"m": {"fraction": 0.3}}}, "selector full trains on all data"),
    ({"train": {"epochs": "3"}}, "integer"),
])
def test_message_says_what_is_allowed(raw, shown):
    with pytest.raises(ConfigError, match=shown):
        params_from_dict(raw)


def test_accepted_boundaries():
    p = params_from_dict({"attack": {"eps": 1.0, "norm": "linf"},
                          "methods": {"m": {"fraction": 1.0}}, "train": {"epochs": 0}})
    assert (p.attack.eps, p.method("m").fraction, p.train.epochs) == (1.0, 1.0, 0)
    assert params_from_dict({"attack": {"norm": "l2", "eps": 2.0}}).attack.eps == 2.0
    # the wideresnet depth check applies to wideresnet only
    assert params_from_dict({"model": {"wrn_depth": 27}}).model.wrn_depth == 27


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_invalid_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("seed: 0\ntrain:\n  epochs: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_params(f)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(f) in msg and "not valid YAML" in msg and "line" in msg


def test_missing_file(tmp_path):
    f = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_params(f)
    msg = str(info.value)
    assert "\n" not in msg and str(f) in msg and "cannot read" in msg


def test_yaml_values_are_validated(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("attack:\n  steps: ten\n")
    with pytest.raises(ConfigError, match=r"^attack\.steps = \"ten\": must be an integer$"):
        load_params(f)


def test_top_level_list_is_rejected(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("- seed\n- 0\n")
    with pytest.raises(ConfigError, match="params"):
        load_params(f)


def test_mixed_type_unknown_keys_give_config_error():
    with pytest.raises(ConfigError):
        params_from_dict({"data": {1: "x", "nme": "mnist"}})


def test_exponent_notation_float_in_yaml(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  weight_decay: 5e-4\n  lr: 1E-2\n")
    assert load_params(f).train.weight_decay == pytest.approx(5e-4)
    assert load_params(f).train.lr == pytest.approx(1e-2)


@pytest.mark.parametrize("text", ["0\n", "false\n", "just a string\n"])
def test_scalar_params_file_is_rejected(tmp_path, text):
    f = tmp_path / "params.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_params(f)


def test_fingerprint_stable_and_sensitive():
    a = fingerprint(params_from_dict({}))
    assert a == fingerprint(Params()) == fingerprint(params_from_dict({}))
    assert len(a) == 16 and int(a, 16) >= 0
    changed = fingerprint(params_from_dict({"attack": {"eps": 0.2}}))
    assert changed != a
    assert fingerprint(params_from_dict({"seeds": [1]})) != a
    assert fingerprint(Params(), "x") != a
    assert fingerprint("a", "b") != fingerprint("b", "a")


def test_fingerprint_is_sha256_of_sorted_json():
    assert fingerprint({"b": 2, "a": 1}) == fingerprint({"a": 1, "b": 2})
    blob = json.dumps([{"a": 1, "b": 2}], sort_keys=True)
    assert fingerprint({"b": 2, "a": 1}) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    # non-JSON values are stringified, not rejected
    assert fingerprint(Path("/x")) == fingerprint("/x")


def test_as_dict():
    d = as_dict(Params())
    assert d["attack"]["eps"] == 0.1 and d["model"]["arch"] == "smallcnn"
    assert as_dict(5) == 5


def test_list_params_become_tuples_and_keep_their_order():
    p = params_from_dict({"seeds": [2, 0, 1], "eval": {"eps_factors": [4, 0.5]}})
    assert p.seeds == (2, 0, 1) and p.eval.eps_factors == (4.0, 0.5)
    assert Params().seeds == (0,)


def test_method_entry_resolves_its_selector_miner_options_and_attack():
    p = params_from_dict({
        "attack": {"name": "pgd", "alpha": 0.02, "steps": 10},
        "methods": {"plain": None,
                    "stack": {"selector": "prune", "fraction": 0.3, "keep": "easiest",
                              "miner": "bullettrain", "gamma": 0.5, "attack": "fgsm-rs",
                              "alpha": 0.125}}})
    plain, stack = p.method("plain"), p.method("stack")
    assert (plain.selector, plain.fraction, plain.miner) == ("full", 1.0, "none")
    assert plain.attack == p.attack
    assert (stack.selector_options.score, stack.selector_options.keep) == ("adv_loss", "easiest")
    assert (stack.miner_options.gamma, stack.miner_options.robust_steps) == (0.5, 2)
    assert (stack.attack.name, stack.attack.alpha, stack.attack.steps) == ("fgsm-rs", 0.125, 10)
    with pytest.raises(ConfigError, match=r"^methods\.other: no such method in params; "
                                          r"defined: plain, stack$"):
        p.method("other")


def test_config_has_no_name_tuples_registries_are_the_source():
    import ast
    import inspect

    import robustprune.config as config
    from robustprune.selection.registry import SELECTORS

    defined = [node for node in ast.parse(inspect.getsource(config)).body
               if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)]
    assert not defined  # allowed names come from the registries, never a tuple written here
    field = {f.name: f for f in __import__("dataclasses").fields(config.MethodKeys)}
    assert field["selector"].metadata["choices"] == SELECTORS.names
