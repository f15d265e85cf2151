"""The PaliGemma SentencePiece tokenizer and pi0's prompt format.

    tok = Tokenizer.load()                                   # gs://big_vision/paligemma_tokenizer.model
    tokens, mask = tok(["pick up the cube"])                 # [B, 48] int32, [B, 48] bool

pi0 prompt: BOS + the cleaned prompt (underscores and newlines to spaces, stripped) + "\\n", padded
with 0 or truncated to ``max_len`` (with a warning: the end of the instruction is lost).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from vlaops import storage
from vlaops.errors import VlaopsError

DEFAULT_URI = "gs://big_vision/paligemma_tokenizer.model"
log = logging.getLogger(__name__)
_warned: set[str] = set()


class Tokenizer:
    def __init__(self, model_proto: bytes, max_len: int = 48):
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model_proto)
        except Exception as e:
            raise VlaopsError(f"not a SentencePiece model ({e})") from None
        self.max_len = max_len
        self.model_proto = model_proto

    @classmethod
    def load(cls, uri: str = DEFAULT_URI, max_len: int = 48) -> Tokenizer:
        return cls(storage.read_bytes(uri), max_len)

    def encode(self, prompt: str) -> list[int]:
        cleaned = prompt.strip().replace("_", " ").replace("\n", " ")
        return [self.sp.bos_id(), *self.sp.EncodeAsIds(cleaned), *self.sp.EncodeAsIds("\n")]

    def __call__(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        tokens = np.zeros((len(prompts), self.max_len), np.int32)
        mask = np.zeros((len(prompts), self.max_len), bool)
        for i, p in enumerate(prompts):
            ids = self.encode(p)
            if len(ids) > self.max_len:
                if p not in _warned:  # once per prompt: a robot sends the same one every step
                    _warned.add(p)
                    log.warning(
                        "prompt of %d tokens truncated to %d: %r", len(ids), self.max_len, p
                    )
                ids = ids[: self.max_len]
            tokens[i, : len(ids)] = ids
            mask[i, : len(ids)] = True
        return tokens, mask


class ByteTokenizer:
    """UTF-8 bytes as tokens (BOS = 1, byte b = b + 2, newline included): the tokenizer of the tiny
    configs, which need no download and a vocabulary of 258."""

    vocab_size = 258

    def __init__(self, max_len: int = 16):
        self.max_len = max_len

    def encode(self, prompt: str) -> list[int]:
        cleaned = prompt.strip().replace("_", " ").replace("\n", " ") + "\n"
        return [1, *(b + 2 for b in cleaned.encode())]

    __call__ = Tokenizer.__call__
