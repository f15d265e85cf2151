"""The PaliGemma-style tokenizer and pi0's prompt format, on a tiny SentencePiece model trained in a
fixture (nothing downloads)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from vlaops import storage
from vlaops.errors import VlaopsError
from vlaops.model import tokenizer as tokenizer_module
from vlaops.model.tokenizer import ByteTokenizer, Tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("spm")
    sentences = [
        "pick up the cube",
        "transfer the cube to the other arm",
        "insert the peg into the socket",
        "fold the towel",
    ]
    (d / "corpus.txt").write_text("\n".join(sentences * 20))
    spm.SentencePieceTrainer.train(
        input=str(d / "corpus.txt"),
        model_prefix=str(d / "m"),
        vocab_size=40,
        model_type="bpe",
        bos_id=2,  # PaliGemma's ids: pad 0, eos 1, bos 2, unk 3
        eos_id=1,
        pad_id=0,
        unk_id=3,
        user_defined_symbols=["\n"],  # PaliGemma's vocabulary has a newline token
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
    )
    return Tokenizer((d / "m.model").read_bytes(), max_len=12)


def test_prompt_format(tokenizer):
    tokens, mask = tokenizer(["pick_up the cube", "fold the towel\n"])
    sp = tokenizer.sp
    ids = [sp.bos_id(), *sp.EncodeAsIds("pick up the cube"), *sp.EncodeAsIds("\n")]
    assert tokenizer.encode("pick_up the cube") == ids  # BOS + cleaned prompt + "\n"
    assert tokens.dtype == np.int32 and mask.dtype == bool and tokens.shape == (2, 12)
    assert list(tokens[0, : len(ids)]) == ids and mask[0].sum() == len(ids)
    assert not tokens[0, len(ids) :].any() and not mask[0, len(ids) :].any()  # padded with 0
    # cleaning: underscores and newlines become spaces, surrounding whitespace goes
    assert tokenizer.encode("  fold_the towel\n") == tokenizer.encode("fold the towel")


def test_truncation_warns_once_per_prompt(tokenizer, caplog):
    long = "transfer the cube to the other arm and insert the peg into the socket"
    tokenizer_module._warned.discard(long)
    with caplog.at_level(logging.WARNING, logger="vlaops.model.tokenizer"):
        tokens, mask = tokenizer([long, long])
    assert mask.all() and tokens.shape == (2, 12)
    assert list(tokens[0]) == tokenizer.encode(long)[:12]
    assert caplog.text.count("truncated") == 1


def test_loads_from_a_uri(tokenizer, bucket):
    storage.write_bytes(f"{bucket}/tok.model", tokenizer.model_proto)
    assert Tokenizer.load(f"{bucket}/tok.model", 12).encode("fold") == tokenizer.encode("fold")
    with pytest.raises(VlaopsError, match="no such file"):
        Tokenizer.load(f"{bucket}/missing.model")
    with pytest.raises(VlaopsError, match="not a SentencePiece model"):
        Tokenizer(b"not a model")


def test_byte_tokenizer_for_tiny_configs():
    tokens, mask = ByteTokenizer(8)(["ab"])
    assert list(tokens[0, :4]) == [1, ord("a") + 2, ord("b") + 2, ord("\n") + 2]
    assert mask[0].sum() == 4
