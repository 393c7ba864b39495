"""Vocabulary, split and the carried streams of truncated BPTT."""

import numpy as np
import pytest
import torch

from rnntui.core.data import DataError, Streams, Vocab, eval_chunks, make_dataset


def test_vocab_is_sorted_code_points_in_the_smallest_dtype():
    vocab = Vocab.from_text("héllo wörld")
    assert list(vocab.chars) == sorted(set("héllo wörld"))
    assert vocab.dtype == np.uint8
    assert vocab.decode(vocab.encode("wörld")) == "wörld"
    wide = Vocab.from_text("".join(chr(0x4E00 + i) for i in range(300)))
    assert wide.dtype == np.uint16
    assert wide.encode(wide.chars[299])[0] == 299


def test_contiguous_split_matches_nanogpt(shakespeare):
    data = make_dataset(shakespeare.read_text())
    assert (len(data.train), len(data.val)) == (1_003_854, 111_540)
    assert len(data.vocab) == 65
    text = shakespeare.read_text()
    assert data.vocab.decode(data.val[:50]) == text[1_003_854:1_003_904]


def test_streams_carry_through_an_epoch_and_reset_when_they_wrap():
    data = np.arange(1000, dtype=np.uint16)
    streams = Streams(data, batch_size=4, seq_len=10)
    assert streams.per_epoch == 24  # (1000 - 1) // 40
    x0, y0, reset0 = streams.batch(0)
    x1, y1, reset1 = streams.batch(1)
    assert reset0 and not reset1
    # each stream continues where it stopped: batch 1 of stream b follows batch 0 of stream b
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)
    assert torch.equal(y0, x0 + 1)
    # streams are contiguous stretches of length per_epoch * seq_len
    assert torch.equal(x0[:, 0], torch.arange(4) * 240)
    x_wrap, _, reset_wrap = streams.batch(24)
    assert reset_wrap and torch.equal(x_wrap, x0)


def test_corpus_shorter_than_one_batch_is_refused():
    with pytest.raises(DataError, match="fewer than one batch"):
        Streams(np.zeros(100, dtype=np.uint8), batch_size=8, seq_len=20)


def test_eval_chunks_cover_every_target_exactly_once():
    data = np.arange(5003, dtype=np.uint32) % 97
    seen = []
    for x, y, _ in eval_chunks(data, n_streams=7, seq_len=64):
        seen.append(y.flatten())
    assert sum(len(s) for s in seen) == len(data) - 1


@pytest.mark.parametrize("text", ["", "   \n\t  \n"])
def test_empty_text_is_refused(text):
    with pytest.raises(DataError, match="empty"):
        make_dataset(text)
