"""scripts/reproduce.sh: every training line it runs is a valid Config for each preset it
accepts (the script once forced --feature_matching, which the score-function presets reject)."""

import pathlib
import re
import shlex

import pytest

from crnn_gan import config as config_lib

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "reproduce.sh"
#: train.py flags that are run options, not Config fields.
RUN_FLAGS = {"model"}


def _training_lines():
    lines = [line for line in SCRIPT.read_text().splitlines() if line.startswith("train ")]
    assert len(lines) == 3  # gan, baseline, gan3
    return [shlex.split(line)[2:] for line in lines]


def _overrides(flags):
    overrides = {}
    for flag in flags:
        match = re.fullmatch(r"--(no)?(\w+)(?:=(.*))?", flag)
        assert match, flag
        negated, name, value = match.groups()
        if name in RUN_FLAGS:
            continue
        default = getattr(config_lib.Config(), name)
        if value is None:
            overrides[name] = not negated
        else:
            overrides[name] = type(default)(value)
    return overrides


@pytest.mark.parametrize("preset", sorted(re.search(
    r"^\s*(\S+)\) ;;", SCRIPT.read_text(), re.M).group(1).split("|")))
def test_each_training_line_is_a_valid_config(preset):
    assert preset in config_lib.PRESETS
    for flags in _training_lines():
        config_lib.preset(preset, **_overrides(flags))  # raises ValueError if invalid
