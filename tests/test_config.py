"""Config loading: defaults, round trip, strictness, and one-line errors with file:line."""

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from dropcli.config import (
    ACTIVATIONS, DATASETS, NORMALIZATIONS, OPTIMIZERS, VARIANTS, Config, apply_overrides, config_hash, config_paths,
    config_to_dict, default_config, get_value, json_schema, load_config, parse_sweep_values, run_config, to_yaml,
    with_sweep, with_values,
)
from dropcli.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PACKAGED = Path(__file__).resolve().parents[1] / "dropcli" / "config" / "default.yaml"


def write(tmp_path, text, name="x.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text):
    """The one-line message of the ConfigError that loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return message.removeprefix(str(path))


# ---------------------------------------------------------------- defaults and round trip


def test_empty_file_and_empty_mapping_are_all_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == Config()
    assert load_config(write(tmp_path, "# only a comment\n")) == Config()
    assert load_config(write(tmp_path, "{}")) == Config()


def test_partial_file_and_empty_sections_keep_defaults(tmp_path):
    config = load_config(write(tmp_path, "dropout:\n  keep_prob: 0.8\nmodel:\n"))
    assert config.dropout.keep_prob == 0.8
    assert config.model == Config().model
    assert config.train.epochs == 50


def test_defaults():
    config = Config()
    assert config.name == "digits" and config.seed == 0
    assert config.data.dataset == "digits"
    assert (config.data.num_train, config.data.num_val) == (None, None)  # all the data
    assert config.train.patience is None
    assert config.model.hidden_dims == (256, 256)
    assert config.model.weight_init == "he" and config.model.reg == 0.0
    assert config.dropout.variant == "inverted" and config.dropout.keep_prob == 0.5
    assert config.train.optimizer == "adam" and config.train.learning_rate == 1e-3
    assert (config.train.batch_size, config.train.epochs) == (100, 50)
    assert config.sweep == {}


def test_default_config_is_the_packaged_mnist1d_sweep():
    config = default_config()
    assert config.name == "mnist1d"
    assert config.sweep == {"dropout.keep_prob": (0.25, 0.5, 1.0), "seed": (0, 1, 2)}
    # every other key takes its default (the defaults stay those of the digits config, so
    # that no existing config file changes meaning)
    assert run_config(config) == with_values(Config(), {
        "name": "mnist1d", "data.dataset": "mnist1d", "data.num_train": None, "data.num_val": None,
        "train.learning_rate": 3e-3, "train.lr_decay": 0.98, "train.epochs": 80})


def test_configs_digits_is_the_former_default():
    former = Config(data={"num_train": 300, "num_val": 300})  # the former schema defaults
    assert load_config(CONFIGS / "digits.yaml") == with_sweep(former, default_config().sweep)


def test_packaged_default_equals_configs_default():
    assert default_config() == load_config(CONFIGS / "default.yaml")
    # same text, except the editor's schema line
    lines = (CONFIGS / "default.yaml").read_text().splitlines(keepends=True)
    assert lines[0].startswith("# yaml-language-server: $schema=schema.json")
    assert "".join(lines[1:]) == PACKAGED.read_text()


def test_the_default_configs_comments_list_the_vocabulary():
    """``activation: relu  # relu | tanh | sigmoid``: each such list is the schema's, in its order."""
    lists = {line.split(":")[0].strip(): tuple(line.split("#")[1].split())[::2]  # "a | b" -> (a, b)
             for line in PACKAGED.read_text().splitlines() if " | " in line.split("#")[-1]}
    assert {key: lists[key] for key in ("dataset", "activation", "normalization", "variant", "optimizer")} == {
        "dataset": DATASETS, "activation": ACTIVATIONS, "normalization": NORMALIZATIONS, "variant": VARIANTS,
        "optimizer": OPTIMIZERS}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_each_shipped_config_loads(path):
    assert path.read_text().startswith("# yaml-language-server: $schema=schema.json\n")
    config = load_config(path)
    assert config.sweep, "every shipped config is a sweep"


def test_shipped_sweeps():
    config = load_config(CONFIGS / "inverted_vs_vanilla.yaml")
    assert config.sweep == {"dropout.variant": ("inverted", "vanilla"),
                            "dropout.keep_prob": (0.25, 0.5, 0.75, 1.0), "seed": (0, 1, 2)}
    config = load_config(CONFIGS / "batchnorm_dropout.yaml")
    assert config.sweep == {"model.normalization": ("none", "batchnorm"),
                            "dropout.keep_prob": (0.5, 1.0), "seed": (0, 1, 2)}


def test_schema_json_is_up_to_date():
    assert json.loads((CONFIGS / "schema.json").read_text()) == json_schema()
    assert "dropout.keep_prob" in json_schema()["properties"]["sweep"]["propertyNames"]["enum"]


@pytest.mark.parametrize("config", [
    Config(),
    default_config(),
    with_values(Config(), {"model.weight_init": 0.01, "data.path": "data/x.npz",
                           "data.num_train": None, "train.learning_rate": 1e-5,
                           "model.hidden_dims": [7], "name": "null"}),
    with_sweep(Config(), {"model.hidden_dims": [[100], [200, 200]], "model.weight_init": ["he", 0.1]}),
], ids=["defaults", "packaged", "odd-values", "list-sweep"])
def test_to_yaml_round_trip(tmp_path, config):
    text = to_yaml(config)
    assert text.startswith("# ")
    assert load_config(write(tmp_path, text)) == config


def test_to_yaml_sections_in_order():
    text = to_yaml(default_config())
    order = [text.index(f"\n{key}:") for key in ("seed", "data", "model", "dropout", "train", "sweep")]
    assert order == sorted(order)
    assert "hidden_dims: [256, 256]" in text
    assert "dropout.keep_prob: [0.25, 0.5, 1.0]" in text


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    # YAML 1.1 reads `1e-3` as a string; dropcli reads it as the number people mean
    assert load_config(write(tmp_path, "train:\n  learning_rate: 1e-3\n")).train.learning_rate == 1e-3


def test_int_accepted_where_float_expected(tmp_path):
    config = load_config(write(tmp_path, "dropout:\n  keep_prob: 1\n"))
    assert config.dropout.keep_prob == 1.0 and isinstance(config.dropout.keep_prob, float)
    assert config_hash(config) == config_hash(with_values(Config(), {"dropout.keep_prob": 1.0}))


# ---------------------------------------------------------------- immutability and hashing


def test_frozen():
    config = default_config()
    with pytest.raises(pydantic.ValidationError):
        config.seed = 3
    with pytest.raises(pydantic.ValidationError):
        config.dropout.keep_prob = 0.1
    with pytest.raises(TypeError):
        config.sweep["seed"] = (4,)
    assert isinstance(config.model.hidden_dims, tuple)
    assert hash(config) == hash(copy.deepcopy(config))
    assert pickle.loads(pickle.dumps(config)) == config


def test_hash_stable_and_sensitive():
    config = default_config()
    assert config_hash(config) == config_hash(load_config(CONFIGS / "default.yaml"))
    assert config_hash(config) == config_hash(run_config(config))  # the grid is not part of a run
    assert len(config_hash(config)) == 8 and int(config_hash(config), 16) >= 0
    assert config_hash(with_values(config, {"seed": 1})) != config_hash(config)
    assert config_hash(with_values(config, {"dropout.keep_prob": 0.25})) != config_hash(config)
    assert config_hash(with_values(config, {"name": "other"})) != config_hash(config)


def test_hash_is_pinned():
    # changing these means existing run folders are not found again: do it on purpose only.
    # A config that states its sizes keeps the hash it had before num_train / num_val
    # defaulted to all the data and train.patience existed:
    assert config_hash(Config(data={"num_train": 300, "num_val": 300})) == "45803e14"
    assert config_hash(Config()) == "e5245207"


def test_config_to_dict_is_json():
    data = config_to_dict(default_config())
    assert list(data) == ["name", "seed", "data", "model", "dropout", "train", "sweep"]
    assert data["model"]["hidden_dims"] == [256, 256]
    json.dumps(data)


# ---------------------------------------------------------------- errors in files


@pytest.mark.parametrize("text, parts", [
    ("name: a\nmodel:\n  hidden_dims: [256, -3]\n",
     [":3: model.hidden_dims[1]: expected an integer >= 1, found -3"]),
    ("model:\n  hidden_dims:\n    - 2\n    - -3\n",
     [":4: model.hidden_dims[1]: expected an integer >= 1, found -3"]),
    ("model:\n  hidden_dims: []\n", [":2: model.hidden_dims: expected a non-empty list", "found []"]),
    ("seed: 1.5\n", [":1: seed: expected an integer >= 0, found 1.5"]),
    ("seed: '1'\n", [":1: seed: expected an integer >= 0, found '1'"]),
    ("seed: true\n", [":1: seed: expected an integer", "found true"]),
    ("\n\nmodel:\n  reg: abc\n", [":4: model.reg: expected a number >= 0, found 'abc'"]),
    ("model:\n  activation: gelu\n", [":2: model.activation: expected one of relu, tanh, sigmoid",
                                      "found 'gelu'"]),
    ("model:\n  weight_init: -1\n", [":2: model.weight_init: expected he, xavier or a number > 0",
                                     "found -1"]),
    ("dropout:\n  keep_prob: 0\n", [":2: dropout.keep_prob: expected a number >= 1e-6 and <= 1",
                                    "found 0"]),
    ("data:\n  num_train: 0\n", [":2: data.num_train: expected an integer >= 1 or null", "found 0"]),
    ("data:\n  dataset: imagenet\n", [":2: data.dataset: expected one of mnist1d, digits, mnist, "
                                       "fashion-mnist, cifar10, npz",
                                       "found 'imagenet'"]),
    ("train:\n  epochs: 20\n  dtype: float16\n", [":3: train.dtype: expected one of float32, float64"]),
    ("name: 'has space'\n", [":1: name: expected a name of 1 to 64 characters", "found 'has space'"]),
    ("model: 3\n", [":1: model: expected a mapping with keys hidden_dims", "found 3"]),
])
def test_value_errors_name_line_key_expected_found(tmp_path, text, parts):
    message = error_of(tmp_path, text)
    for part in parts:
        assert part in message
    assert "(and" not in message


def test_several_errors_report_the_first_in_the_file_and_count_the_rest(tmp_path):
    message = error_of(tmp_path, "train:\n  epochs: 0\nmodel:\n  reg: -1\n  activation: gelu\n")
    assert message.startswith(":2: train.epochs: expected an integer >= 1, found 0")
    assert message.endswith("(and 2 more)")


@pytest.mark.parametrize("text, part", [
    ("model:\n  hiden_dims: [1]\n", ":2: model.hiden_dims: unknown key; did you mean 'hidden_dims'?"),
    ("seed: 1\nmodle:\n  reg: 1\n", ":2: modle: unknown key; did you mean 'model'?"),
    ("model:\n  keep_prob: 0.5\n", ":2: model.keep_prob: unknown key; did you mean 'dropout.keep_prob'?"),
    ("train:\n  lr: 0.1\n", ":2: train.lr: unknown key; did you mean 'learning_rate'?"),
    ("model:\n  weight_decay: 0.1\n", ":2: model.weight_decay: unknown key; did you mean 'reg'?"),
    ("train:\n  zzz: 1\n", ":2: train.zzz: unknown key; expected one of optimizer, learning_rate"),
])
def test_unknown_keys_did_you_mean(tmp_path, text, part):
    assert part in error_of(tmp_path, text)


@pytest.mark.parametrize("key, value, equivalent", [
    ("rate", 0.3, "keep_prob: 0.7 (= 1 - rate)"),
    ("drop_prob", 0.25, "keep_prob: 0.75 (= 1 - drop_prob)"),
    ("dropout_rate", 0.5, "keep_prob: 0.5 (= 1 - dropout_rate)"),
    ("drop_rate", 0.1, "keep_prob: 0.9 (= 1 - drop_rate)"),
    ("dropout", 0.2, "keep_prob: 0.8 (= 1 - dropout)"),
    ("keep", 0.6, "write keep_prob: 0.6"),
    ("dropout_keep_ratio", 0.6, "write keep_prob: 0.6"),
])
def test_keep_prob_aliases_give_the_equivalent(tmp_path, key, value, equivalent):
    message = error_of(tmp_path, f"dropout:\n  variant: inverted\n  {key}: {value}\n")
    assert message.startswith(f":3: dropout.{key}: dropcli calls this knob keep_prob")
    assert "probability of keeping a unit" in message
    assert equivalent in message


def test_p_is_ambiguous_and_both_readings_are_given(tmp_path):
    message = error_of(tmp_path, "dropout:\n  p: 0.3\n")
    assert message.startswith(":2: dropout.p: ")
    assert "ambiguous" in message
    assert "keep_prob: 0.3 if p was the keep probability" in message
    assert "keep_prob: 0.7 if it was the drop rate" in message


def test_yaml_problems(tmp_path):
    assert error_of(tmp_path, "seed: 1\nname: a\nseed: 2\n") == (
        ":3: seed: duplicate key (first given on line 1)")
    assert ":3: model.reg: duplicate key (first given on line 2)" in error_of(
        tmp_path, "model:\n  reg: 1\n  reg: 2\n")
    message = error_of(tmp_path, "seed: 0\nname: !!python/object/apply:os.system ['echo hi']\n")
    assert message.startswith(":2: the tag '!!python/object/apply:os.system' is not allowed")
    assert "safe" in message
    assert "invalid YAML" in error_of(tmp_path, "model: [1\n")
    assert error_of(tmp_path, "- 1\n- 2\n").startswith(":1: expected a mapping of config keys")
    assert "found 'just text'" in error_of(tmp_path, "just text\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- YAML 1.1 surprises


@pytest.mark.parametrize("text, message", [
    ("train: {epochs: 2}\n? [1, 2]\n: 3\n", ":2: [1, 2]: keys should be strings, found a list"),
    ("train: {[1]: 2}\n", ":1: train.[1]: keys should be strings, found a list"),
    ("model:\n  reg: 0\n  ? {a: 1}\n  : 2\n", ":3: model.{a: 1}: keys should be strings, found a mapping"),
    ("name: a\nyes: 1\n", ":2: yes: keys should be strings, found true; to mean the text, quote it: 'yes'"),
    ("name: a\nnull: 1\n", ":2: null: keys should be strings, found null; to mean the text, quote it: 'null'"),
    ("model:\n  1: x\n", ":2: model.1: keys should be strings, found 1; to mean the text, quote it: '1'"),
])
def test_keys_that_are_not_strings_name_line_and_key_as_written(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_keys_that_are_not_strings_in_overrides():
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), ["seed={[1]: 2}"])
    assert str(info.value) == "--set seed.[1]: keys should be strings, found a list"


def test_values_that_do_not_fit_their_tag(tmp_path):
    assert error_of(tmp_path, "seed: 1\ntrain:\n  epochs: !!int abc\n") == (
        ":3: train.epochs: 'abc' is not a valid !!int")
    assert error_of(tmp_path, "name: !!bool maybe\n") == ":1: name: 'maybe' is not a valid !!bool"


def test_quoted_and_merge_keys_are_strings(tmp_path):
    assert ":2: yes: unknown key" in error_of(tmp_path, "name: a\n'yes': 1\n")
    assert load_config(write(tmp_path, "model:\n  <<: {reg: 0.1}\n")).model.reg == 0.1


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: 010\n", ":2: train.epochs: 010 is an octal number in YAML 1.1 (= 8); "
                                "write 10 (or 8) without the leading zero, or quote it for text: '010'"),
    ("train:\n  epochs: 1:30\n", ":2: train.epochs: 1:30 is a base-60 number in YAML 1.1 (= 90); "
                                 "write 90, or quote it for text: '1:30'"),
    ("model:\n  hidden_dims: [16, 010]\n", ":2: model.hidden_dims[1]: 010 is an octal number"),
    ("sweep:\n  seed: [0, 1, 012]\n", ":2: sweep.seed[2]: 012 is an octal number in YAML 1.1 (= 10)"),
    ("train:\n  learning_rate: 1:00.5\n",
     ":2: train.learning_rate: 1:00.5 is a base-60 number in YAML 1.1 (= 60.5)"),
    ("name: 0755\n", ":1: name: 0755 is an octal number in YAML 1.1 (= 493)"),
])
def test_yaml_1_1_octal_and_base_60_numbers_are_refused(tmp_path, text, message):
    assert error_of(tmp_path, text).startswith(message)


def test_numbers_yaml_1_2_reads_the_same_are_kept(tmp_path):
    config = load_config(write(tmp_path, "seed: 07\nname: '010'\ndata:\n  path: '1:30'\n"))
    assert (config.seed, config.name, config.data.path) == (7, "010", "1:30")
    with pytest.raises(ConfigError, match=r"^--set train\.epochs: 010 is an octal number .* write 10 \(or 8\)"):
        apply_overrides(Config(), ["train.epochs=010"])


NAME = "expected a name of 1 to 64 characters from A-Z a-z 0-9 . _ - (at least one letter or digit)"


@pytest.mark.parametrize("text, message", [
    ("name: no\n", f":1: name: {NAME}, found false; to mean the text, quote it: 'no'"),
    ("name: 123\n", f":1: name: {NAME}, found 123; to mean the text, quote it: '123'"),
    ("data:\n  path: 2024\n",
     ":2: data.path: expected a string or null, found 2024; to mean the text, quote it: '2024'"),
    ("sweep:\n  name: [a, off]\n",
     f":2: sweep.name[1]: {NAME}, found false; to mean the text, quote it: 'off'"),
])
def test_booleans_and_numbers_where_text_was_expected_say_quote_it(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_quote_it_hint_in_overrides_and_not_for_wrong_text():
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), ["name=no"])
    assert str(info.value) == f"--set name: {NAME}, found false; to mean the text, quote it"
    with pytest.raises(ConfigError) as info:  # a choice is not fixed by quoting
        apply_overrides(Config(), ["model.normalization=off"])
    assert "quote" not in str(info.value)


# ---------------------------------------------------------------- counts, bounds, top-level aliases


@pytest.mark.parametrize("text", ["[0]", "[-3]", "[1.5]", "[[16]]", "[0, 0]"])
def test_one_problem_is_not_counted_twice(tmp_path, text):
    message = error_of(tmp_path, f"model:\n  hidden_dims: {text}\n")
    assert message.startswith(":2: model.hidden_dims[0]: expected an integer >= 1, found ")
    assert "(and" not in message


def test_distinct_problems_are_counted(tmp_path):
    assert error_of(tmp_path, "model:\n  hidden_dims: [0, -3]\n").endswith("found 0 (and 1 more)")
    with pytest.raises(ConfigError) as info:
        parse_sweep_values(["seed=,"])
    assert str(info.value) == "--set seed[0]: expected an integer >= 0, found null"


KEEP = "expected a number >= 1e-6 and <= 1"


@pytest.mark.parametrize("item, message", [
    ("dropout.keep_prob=1e-40", f"--set dropout.keep_prob: {KEEP}, found 1e-40"),
    ("dropout.keep_prob=1e-320", f"--set dropout.keep_prob: {KEEP}, found 1e-320"),
    ("dropout.input_keep_prob=1e-40", f"--set dropout.input_keep_prob: {KEEP}, found 1e-40"),
    ("model.weight_init=1e200", "--set model.weight_init: expected he, xavier or a number > 0 and <= 10, "
                                "found 1e+200"),
])
def test_extreme_numbers_are_refused(item, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), [item])
    assert str(info.value) == message


def test_extreme_number_bounds(tmp_path):
    config = with_values(Config(), {"dropout.keep_prob": 1e-6, "dropout.input_keep_prob": 1e-6,
                                    "model.weight_init": 10})
    assert (config.dropout.keep_prob, config.model.weight_init) == (1e-6, 10)
    assert error_of(tmp_path, "dropout:\n  input_keep_prob: 9.9e-7\n") == (
        f":2: dropout.input_keep_prob: {KEEP}, found 9.9e-07")
    assert error_of(tmp_path, "sweep:\n  model.weight_init: [he, 10.5]\n") == (
        ":2: sweep.model.weight_init[1]: expected he, xavier or a number > 0 and <= 10, found 10.5")


ALIAS = "dropcli calls this knob keep_prob (probability of keeping a unit)"


@pytest.mark.parametrize("text, message", [
    ("dropout_rate: 0.2\n", f":1: dropout_rate: {ALIAS}; write dropout.keep_prob: 0.8 (= 1 - dropout_rate)"),
    ("name: a\nrate: 0.3\n", f":2: rate: {ALIAS}; write dropout.keep_prob: 0.7 (= 1 - rate)"),
    ("keep: 0.6\n", f":1: keep: {ALIAS}; write dropout.keep_prob: 0.6"),
    ("p: 0.3\n", "if p was the keep probability, dropout.keep_prob: 0.7 if it was the drop rate"),
    ("drop_prob: abc\n", f":1: drop_prob: {ALIAS}; write dropout.keep_prob instead"),
])
def test_top_level_keep_prob_aliases_give_the_equivalent(tmp_path, text, message):
    assert message in error_of(tmp_path, text)


def test_top_level_keep_prob_aliases_in_overrides():
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), ["drop_prob=0.1"])
    assert str(info.value) == f"--set drop_prob: {ALIAS}; write dropout.keep_prob=0.9 (= 1 - drop_prob)"


REPO = Path(__file__).resolve().parents[1]
REAL = [  # the auditor's cases as real `dropcli train` processes: x.yaml, --set items, the line
    ("train: {epochs: 2}\n? [1, 2]\n: 3\n", [], "x.yaml:2: [1, 2]: keys should be strings"),
    ("train: {epochs: 1}\n", ["dropout.keep_prob=1e-40"], f"--set dropout.keep_prob: {KEEP}"),
    ("train: {epochs: 1}\n", ["model.weight_init=1e200"], "--set model.weight_init: expected he, xavier"),
    ("train:\n  epochs: 010\n", [], "x.yaml:2: train.epochs: 010 is an octal number"),
]


@pytest.mark.parametrize("text, items, line", REAL, ids=["list-key", "keep_prob", "weight_init", "octal"])
def test_bad_config_in_a_real_process_is_one_line_exit_2(tmp_path, text, items, line):
    write(tmp_path, text)
    sets = [arg for item in items for arg in ("--set", item)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "dropcli", "train", "x.yaml", "--runs-dir", "runs", *sets],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    lines = proc.stderr.splitlines()  # no traceback, no numpy RuntimeWarning
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {line}"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.yaml"]  # no runs folder


# ---------------------------------------------------------------- sweep section


@pytest.mark.parametrize("text, part", [
    ("sweep:\n  seed: [0, 1]\n  dropout.keep_prob: [0.5, 1.5]\n",
     ":3: sweep.dropout.keep_prob[1]: expected a number >= 1e-6 and <= 1, found 1.5"),
    ("sweep:\n  dropout.keep_prob:\n    - 0.5\n    - 2\n",
     ":4: sweep.dropout.keep_prob[1]: expected a number >= 1e-6 and <= 1, found 2"),
    ("sweep:\n  model.hidden_dims: [[100], [200, 0]]\n",
     ":2: sweep.model.hidden_dims[1][1]: expected an integer >= 1, found 0"),
    ("sweep:\n  seed: []\n", ":2: sweep.seed: expected a non-empty list of values, found []"),
    ("sweep:\n  seed: 3\n", ":2: sweep.seed: expected a non-empty list of values, found 3"),
    ("name: a\nsweep:\n  dropout.kep_prob: [0.5]\n",
     ":3: sweep.dropout.kep_prob: unknown key; did you mean 'dropout.keep_prob'?"),
    ("sweep:\n  dropout.rate: [0.5, 0.25]\n",
     ":2: sweep.dropout.rate: dropcli calls this knob keep_prob"),
    ("sweep:\n  model: [1]\n", ":2: sweep.model: is a section, not a setting"),
])
def test_sweep_errors(tmp_path, text, part):
    assert part in error_of(tmp_path, text)


def test_sweep_alias_gives_equivalent_list(tmp_path):
    assert "dropout.keep_prob: [0.5, 0.75] (= 1 - rate)" in error_of(
        tmp_path, "sweep:\n  dropout.rate: [0.5, 0.25]\n")


def test_sweep_values_are_normalized(tmp_path):
    config = load_config(write(tmp_path, "sweep:\n  model.hidden_dims: [[64], [32, 32]]\n"
                                         "  dropout.keep_prob: [1, 0.5]\n"))
    assert config.sweep == {"model.hidden_dims": ((64,), (32, 32)), "dropout.keep_prob": (1.0, 0.5)}
    hash(config)


# ---------------------------------------------------------------- overrides


def test_overrides_are_typed():
    config = apply_overrides(default_config(), [
        "model.reg=0.01", "dropout.keep_prob=0.5", "model.hidden_dims=[100,100]",
        "model.weight_init=0.01", "data.num_train=null", "train.learning_rate=1e-4", "name=run-2"])
    assert config.model.reg == 0.01 and config.model.hidden_dims == (100, 100)
    assert config.model.weight_init == 0.01 and config.data.num_train is None
    assert config.train.learning_rate == 1e-4 and config.name == "run-2"
    assert config.sweep == default_config().sweep
    assert apply_overrides(Config(), ["model.hidden_dims=[64]"]).model.hidden_dims == (64,)


@pytest.mark.parametrize("item, message", [
    ("seed=1.5", "--set seed: expected an integer >= 0, found 1.5"),
    ("seed=abc", "--set seed: expected an integer >= 0, found 'abc'"),
    ("model.reg=abc", "--set model.reg: expected a number >= 0, found 'abc'"),
    ("model.hidden_dims=[64, 0]", "--set model.hidden_dims[1]: expected an integer >= 1, found 0"),
    ("model.hiden_dims=[64]", "--set model.hiden_dims: unknown key; did you mean 'model.hidden_dims'?"),
    ("keep_prob=0.5", "--set keep_prob: unknown key; did you mean 'dropout.keep_prob'?"),
    ("model=3", "--set model: is a section, not a setting"),
    ("model.reg", "--set model.reg: expected KEY=VALUE"),
    ("model.hidden_dims=[1,2", "--set model.hidden_dims: invalid YAML"),
    ("dropout.rate=0.3", "--set dropout.rate: dropcli calls this knob keep_prob"),
])
def test_override_errors(item, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(default_config(), [item])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_override_aliases_give_the_equivalent():
    with pytest.raises(ConfigError, match=r"write dropout\.keep_prob=0\.7 \(= 1 - rate\)"):
        apply_overrides(Config(), ["dropout.rate=0.3"])
    with pytest.raises(ConfigError, match=r"dropout\.keep_prob=0\.3 if p was .*=0\.7 if it was"):
        apply_overrides(Config(), ["dropout.p=0.3"])


def test_with_values_and_get_value():
    config = with_values(default_config(), {"dropout.keep_prob": 0.25, "seed": 1})
    assert get_value(config, "dropout.keep_prob") == 0.25 and get_value(config, "seed") == 1
    with pytest.raises(ConfigError, match="sweep dropout.keep_prob: expected a number >= 1e-6"):
        with_values(config, {"dropout.keep_prob": 1.5}, source="sweep")
    with pytest.raises(ConfigError, match="did you mean 'dropout.keep_prob'"):
        get_value(config, "dropout.kep_prob")


def test_config_paths():
    paths = config_paths()
    assert paths[:3] == ["name", "seed", "data.dataset"]
    assert "dropout.keep_prob" in paths and "sweep" not in paths
    for path in paths:
        get_value(Config(), path)


# ---------------------------------------------------------------- sweep values from the command line


def test_parse_sweep_values():
    grid = parse_sweep_values(["dropout.keep_prob=0.25,0.5,1", "model.hidden_dims=[100],[200,200]"])
    assert grid == {"dropout.keep_prob": [0.25, 0.5, 1.0], "model.hidden_dims": [(100,), (200, 200)]}
    assert parse_sweep_values(["dropout.variant=inverted, vanilla"]) == {
        "dropout.variant": ["inverted", "vanilla"]}


@pytest.mark.parametrize("item, message", [
    ("dropout.keep_prob=0.25,1.5", "--set dropout.keep_prob[1]: expected a number >= 1e-6 and <= 1"),
    ("model.hidden_dims=[100],[0]", "--set model.hidden_dims[1][0]: expected an integer >= 1"),
    ("dropout.rate=0.25,0.5", "--set dropout.rate: dropcli calls this knob keep_prob"),
    ("seeds=0,1", "--set seeds: unknown key; did you mean 'seed'?"),
])
def test_parse_sweep_values_errors(item, message):
    with pytest.raises(ConfigError) as info:
        parse_sweep_values([item])
    assert str(info.value).startswith(message)


def test_with_sweep_adds_and_replaces_axes():
    config = with_sweep(default_config(), {"seed": [5, 6], "dropout.variant": ["vanilla"]})
    assert config.sweep == {"dropout.keep_prob": (0.25, 0.5, 1.0), "seed": (5, 6),
                            "dropout.variant": ("vanilla",)}


# ---------------------------------------------------------------- documents too large, texts too long


def test_a_config_of_too_many_values_says_so_not_aliases(tmp_path):
    plain = "".join(f"k{i}: 1\n" for i in range(12_000))  # no alias anywhere
    assert error_of(tmp_path, plain) == (
        ":1: this document holds more than 10000 values (keys and list items); dropcli reads configs of "
        "at most 10000 (a config has a few dozen)")
    long_axis = "name: a\nsweep:\n  seed: [" + ", ".join(map(str, range(12_000))) + "]\n"
    assert error_of(tmp_path, long_axis).startswith(":3: this value holds more than 10000 values")
    bomb = "a: &a [" + ", ".join(["0"] * 6_000) + "]\nb: *a\n"  # 6,001 values written, 12,002 once expanded
    assert error_of(tmp_path, bomb) == (
        ":1: YAML aliases expand this document past 10000 values; write the values out instead")


K = "k" * 100_000
CUT = "k" * 57 + "..."  # a key or value is repeated up to 60 characters, like show()
LIST = "[" + ", ".join(["1"] * 5_000) + "]"


@pytest.mark.parametrize("text, start", [
    (f"? {K}\n: 1\n", f":1: {CUT}: unknown key"),
    (f"model:\n  ? {K}\n  : 1\n", f":2: model.{CUT}: unknown key"),
    (f"sweep:\n  ? model.{K}\n  : [1]\n", f":2: sweep.model.{K[:51]}...: unknown key"),
    (f"? {K}\n: 1\n? {K}\n: 2\n", f":3: {CUT}: duplicate key"),
    (f"data:\n  ? {K}\n  : {{x: 1}}\n", f":2: data.{CUT}: unknown key"),
    (f"? {LIST}\n: 1\n", f":1: {LIST[:57]}...: keys should be strings, found a list"),
    (f"seed: *{K}\n", f":1: invalid YAML: found undefined alias '{K[:56]}..."),
    (f"seed: !{K} 1\n", f":1: the tag '!{K[:55]}... is not allowed"),
    (f"seed: !!int {K}\n", f":1: seed: '{K[:56]}... is not a valid !!int"),
    ("seed: 0" + "7" * 3_000 + "\n", ":1: seed: 0" + "7" * 56 + "... is an octal number"),
    ("name: 0." + "0" * 100_000 + "1\n", ":1: name: expected a name of 1 to 64 characters"),
], ids=["key", "section key", "sweep axis", "duplicate key", "key above a mapping", "list as key", "alias",
        "tag", "!!int", "octal", "quote it"])
def test_long_keys_and_values_are_cut_in_errors(tmp_path, text, start):
    """A 100 kB key was repeated whole in a 100 kB error line; keys are cut like values."""
    message = error_of(tmp_path, text)
    assert message.startswith(start) and len(message) < 500, message[:500]


@pytest.mark.parametrize("how", ["train", "sweep"])
@pytest.mark.parametrize("item, start", [
    (f"{K}=1", f"--set {CUT}: unknown key"),
    (f"model.{K}=1", "--set model.k"),
    (K, f"--set {CUT}: expected KEY=VALUE"),
    (f"{K}=[1", f"--set {CUT}: invalid YAML"),
], ids=["key", "section key", "no value", "invalid YAML"])
def test_long_keys_in_overrides_are_cut(how, item, start):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), [item]) if how == "train" else parse_sweep_values([item])
    message = str(info.value)
    assert message.startswith(start) and "..." in message and len(message) < 250, message[:300]


@pytest.mark.parametrize("text", [
    "seed: 1" + "0" * 5_000 + "\n",  # the constructor refuses it (it called it no valid !!int)
    "seed: 0x" + "f" * 4_000 + "\n",  # read, then no message, JSON file or config hash could write it
    "seed: 0b" + "1" * 20_000 + "\n",
    "seed: 0" + "7" * 4_500 + "\n",  # octal: its YAML 1.1 check read it in decimal
    "model:\n  hidden_dims: [1" + "0" * 5_000 + "]\n",
], ids=["decimal", "hex", "binary", "octal", "in a list"])
def test_integers_python_cannot_write_are_refused_with_their_line(tmp_path, text):
    message = error_of(tmp_path, text)
    assert message.endswith(" is too large a number: Python reads and writes integers of at most 4300 digits")
    assert len(message) < 200
