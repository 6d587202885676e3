"""Text corpora and tokenizers: the kjv dump parsed and split by book with checksums, the embedded sample, the
three tokenizers, and the chunking that lets a model carry its state from one batch to the next."""
import hashlib

import pytest
import torch

from snn_ssm.data import text
from snn_ssm.data.text import (KJV_SPLITS, BPETokenizer, ByteTokenizer, TokenChunks, WordVocab, load_kjv,
                               parse_bible_dump, tokenizer_from_state)


def test_dump_parsing_strips_references_and_keeps_book_order():
    dump = "Ge1:1 In the beginning.\nGe1:2 And the earth.\n\nRuth1:1 Now it came to pass.\n1Pet1:1 Peter.\n"
    assert parse_bible_dump(dump) == [("Ge", ["In the beginning.", "And the earth."]),
                                      ("Ruth", ["Now it came to pass."]), ("1Pet", ["Peter."])]
    with pytest.raises(ValueError, match="line 2"):
        parse_bible_dump("Ge1:1 ok\nnot a verse\n")


def test_books_are_held_out_whole():
    books = [("Ge", ["a", "b"]), ("Ruth", ["c"]), ("Est", ["d"]), ("Mat", ["e"])]
    splits = text._split_books(books)
    assert splits == {"train": "a\nb\ne\n", "valid": "c\n", "test": "d\n"}
    assert not set(KJV_SPLITS["valid"]) & set(KJV_SPLITS["test"])


def test_prepare_refuses_another_dump(tmp_path):
    dump = tmp_path / "dump.txt"
    dump.write_text("Ge1:1 In the beginning.\n")
    with pytest.raises(ValueError, match="not the expected dump"):
        text.prepare_kjv(dump, tmp_path / "out")


def test_folder_is_checked_against_its_sums(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text(f"{split} text\n")
    sums = "".join(f"{hashlib.sha256((s + ' text' + chr(10)).encode()).hexdigest()}  {s}.txt\n"
                   for s in ("train", "valid", "test"))
    (tmp_path / "SHA256SUMS").write_text(sums)
    assert load_kjv(tmp_path)["valid"] == "valid text\n"
    (tmp_path / "test.txt").write_text("edited\n")
    with pytest.raises(ValueError, match="checksum"):
        load_kjv(tmp_path)
    with pytest.raises(FileNotFoundError, match="make kjv"):
        load_kjv(tmp_path / "missing")


def test_embedded_sample():
    s = load_kjv()
    assert s["train"].startswith("In the beginning God created the heaven and the earth.\n")
    assert s["valid"].startswith("Now it came to pass in the days when the judges ruled")  # Ruth
    assert s["test"].startswith("Now the word of the LORD came unto Jonah")
    assert not any(ch.isdigit() for ch in s["train"].split("\n")[0])  # no verse numbers


def test_tokenizers_round_trip_and_restore(tmp_path):
    sample = load_kjv()["valid"]
    byte = ByteTokenizer()
    assert byte.decode(byte.encode(sample)) == sample
    bpe = BPETokenizer.train(sample, vocab_size=400, cache_dir=tmp_path)
    ids = bpe.encode(sample[:500])
    assert bpe.decode(ids) == sample[:500] and ids.numel() < 500 and bpe.vocab_size == 400
    assert len(list(tmp_path.iterdir())) == 1  # cached ...
    again = BPETokenizer.train(sample, vocab_size=400, cache_dir=tmp_path)  # ... and loaded
    assert torch.equal(again.encode(sample[:500]), ids)
    restored = tokenizer_from_state(bpe.state())
    assert torch.equal(restored.encode(sample[:500]), ids)
    vocab = WordVocab.build(["the lord said", "the end"])
    assert vocab.decode(vocab.encode_lines(["the lord spake"])) == "the lord <unk> <eos>"
    assert tokenizer_from_state(vocab.state()).words == vocab.words


def test_chunks_continue_row_by_row():
    tokens = torch.arange(1001)
    ds = TokenChunks(tokens, seq_len=10, streams=4)
    assert len(ds) == 4 * (1000 // 4 // 10)
    batches = [TokenChunks.collate([ds[i] for i in range(b * 4, b * 4 + 4)]) for b in range(3)]
    x0, y0 = batches[0]
    assert x0.shape == (10, 4) and torch.equal(y0[:-1], x0[1:])
    for (xa, ya), (xb, _) in zip(batches, batches[1:]):
        assert torch.equal(xb[0], ya[-1])  # each row's next chunk starts where its last target ended
        assert torch.equal(xb[0] - xa[0], torch.full((4,), 10))
    with pytest.raises(ValueError, match="do not fill"):
        TokenChunks(torch.arange(30), seq_len=10, streams=4)
