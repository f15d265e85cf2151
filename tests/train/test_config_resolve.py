"""The pipeline's config form: a family name plus LoRA/full, or a full name."""

import pytest

from vlaops.errors import VlaopsError
from vlaops.train import config


@pytest.mark.parametrize(
    ("name", "mode", "expected"),
    [
        ("pi0_aloha_sim", "lora", "pi0_aloha_sim_lora"),
        ("pi0_aloha_sim", "full", "pi0_aloha_sim_full"),
        ("pi0_aloha_sim_full", "full", "pi0_aloha_sim_full"),
        ("pi0_aloha_sim_full", "", "pi0_aloha_sim_full"),
        ("debug", "lora", "debug_lora"),
        ("debug", "full", "debug"),  # no _full variant: the config as it is
    ],
)
def test_resolve(name, mode, expected):
    assert config.resolve(name, mode).name == expected


def test_lora_config_freezes_the_base_weights_and_full_does_not():
    assert config.resolve("pi0_aloha_sim", "lora").model_config.paligemma_lora
    assert not config.resolve("pi0_aloha_sim", "full").model_config.paligemma_lora


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("pi0_aloha_sim", "qlora", "fine-tune mode 'qlora': choose lora or full"),
        ("pi0_aloha_sim_full", "lora", "'pi0_aloha_sim_full' is not a lora fine-tune"),
        ("pi0_aloha", "lora", "unknown training config 'pi0_aloha' — did you mean"),
    ],
)
def test_bad_names_and_modes_are_clear_errors(name, mode, message):
    with pytest.raises(VlaopsError, match=message):
        config.resolve(name, mode)
