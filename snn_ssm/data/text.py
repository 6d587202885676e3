"""Text corpora and tokenizers for the language models: the King James Bible (offline, from Debian) and WikiText-103.

**kjv.** Debian's ``bible-kjv-text`` + ``bible-kjv`` packages (the text is public domain; the ``bible`` program,
GPL-2+, only reads it). ``make kjv`` fetches them with ``apt-get download``, unpacks them with ``dpkg-deb -x``
(no installation), dumps the whole book with ``bible -f gen1:1-rev22:21`` (one verse per line, ``Ge1:1 In the
beginning ...``) and calls :func:`prepare_kjv`, which checks the dump's SHA-256, strips the references and splits
by book (:data:`KJV_SPLITS`: whole books held out, so validation text is never a neighbour of training text) into
``train.txt``, ``valid.txt``, ``test.txt`` (one verse per line) with a ``SHA256SUMS`` file. A small sample ships in
the package (Genesis / Ruth / Jonah), so tests and the CPU demo need nothing fetched.

**wikitext103.** The standard raw token files ``wiki.{train,valid,test}.tokens`` in a folder: word-level, each
line's words plus ``<eos>``, the vocabulary built from the training split as the papers do (267,735 words).

Tokenizers: :class:`ByteTokenizer` (UTF-8 bytes, 256 ids, nothing to train), :class:`BPETokenizer` (byte-level
BPE trained with the ``tokenizers`` library on the training split and cached), :class:`WordVocab` (WikiText).
:class:`TokenChunks` cuts a token stream into training examples.
"""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import torch

__all__ = ["KJV_SPLITS", "KJV_DUMP_SHA256", "parse_bible_dump", "prepare_kjv", "load_kjv", "load_wikitext103",
           "ByteTokenizer", "BPETokenizer", "WordVocab", "TokenChunks", "tokenizer_from_state"]

SPLITS = ("train", "valid", "test")
#: SHA-256 of ``bible -f gen1:1-rev22:21`` from bible-kjv-text 4.38 (31,102 verses).
KJV_DUMP_SHA256 = "cd45f0c9cedab8e4439bd6486c8952c77cc8b0ecc5d1f6ae3513f2039f47229d"
#: Books held out (the ``bible`` program's abbreviations), about 5.4 % of the text each; the rest is training text.
KJV_SPLITS = {"valid": ("Ruth", "Ezra", "Eccl", "Joel", "Mark", "Gal", "Heb"),
              "test": ("Est", "Lam", "Dan", "Jonah", "John", "1Pet")}
_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
_SAMPLE = Path(__file__).with_name("kjv_sample.json.gz")


def parse_bible_dump(text: str) -> list[tuple[str, list[str]]]:
    """``[(book, [verse, ...]), ...]`` in order, from ``bible -f`` output (references stripped).

    Examples::

        >>> parse_bible_dump("Ge1:1 In the beginning God created the heaven and the earth.\\nGe1:2 And ...\\n")
        [('Ge', ['In the beginning God created the heaven and the earth.', 'And ...'])]
    """
    books: list[tuple[str, list[str]]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _VERSE.match(line)
        if m is None:
            raise ValueError(f"line {n} is not a verse of `bible -f` output (Book1:1 text): {line[:60]!r}")
        book, verse = m.group(1), m.group(4).strip()
        if not books or books[-1][0] != book:
            books.append((book, []))
        books[-1][1].append(verse)
    return books


def _split_books(books) -> dict[str, str]:
    held = {b: split for split, names in KJV_SPLITS.items() for b in names}
    parts: dict[str, list[str]] = {s: [] for s in SPLITS}
    for book, verses in books:
        parts[held.get(book, "train")].extend(verses)
    return {s: "\n".join(v) + "\n" for s, v in parts.items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare_kjv(dump_path, out_dir) -> dict[str, str]:
    """Write ``train.txt``/``valid.txt``/``test.txt`` and ``SHA256SUMS`` in ``out_dir`` from the ``bible -f`` dump at
    ``dump_path`` (checked against :data:`KJV_DUMP_SHA256`); returns the splits' checksums."""
    raw = Path(dump_path).read_bytes()
    if _sha256(raw) != KJV_DUMP_SHA256:
        raise ValueError(f"{dump_path} is not the expected dump of bible-kjv-text 4.38 (sha256 {_sha256(raw)}, "
                         f"expected {KJV_DUMP_SHA256}); make it with `bible -f gen1:1-rev22:21`")
    books = parse_bible_dump(raw.decode("ascii"))
    missing = [b for names in KJV_SPLITS.values() for b in names if b not in {name for name, _ in books}]
    if len(books) != 66 or missing:
        raise ValueError(f"the dump has {len(books)} books (expected 66); missing held-out books: {missing}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split, text in _split_books(books).items():
        data = text.encode("ascii")
        (out / f"{split}.txt").write_bytes(data)
        sums[f"{split}.txt"] = _sha256(data)
    (out / "SHA256SUMS").write_text("".join(f"{h}  {name}\n" for name, h in sums.items()))
    return sums


def load_kjv(data_dir=None) -> dict[str, str]:
    """The kjv splits ``{"train", "valid", "test"}`` as text: from ``data_dir`` (made by ``make kjv``; checked
    against its ``SHA256SUMS``) or, without one, the embedded sample (Genesis / Ruth / Jonah).

    Examples::

        >>> splits = load_kjv()
        >>> splits["train"][:55]
        'In the beginning God created the heaven and the earth.\\n'
    """
    if data_dir is None:
        with gzip.open(_SAMPLE, "rt", encoding="ascii") as f:
            return json.load(f)
    folder = Path(data_dir)
    sums_file = folder / "SHA256SUMS"
    if not sums_file.is_file():
        raise FileNotFoundError(f"{folder} has no SHA256SUMS: make the corpus with `make kjv` (or "
                                f"`python -m snn_ssm data kjv --dump DUMP --out {folder}`)")
    sums = dict(reversed(line.split()) for line in sums_file.read_text().splitlines() if line.strip())
    splits = {}
    for split in SPLITS:
        path = folder / f"{split}.txt"
        data = path.read_bytes()
        if _sha256(data) != sums.get(path.name):
            raise ValueError(f"{path} does not match its checksum in {sums_file}: rebuild it with `make kjv`")
        splits[split] = data.decode("ascii")
    return splits


def load_wikitext103(data_dir) -> dict[str, list[str]]:
    """The raw WikiText-103 token files in ``data_dir`` (``wiki.{train,valid,test}.tokens``) as lists of lines.

    Examples::

        >>> lines = load_wikitext103("wikitext-103")              # doctest: +SKIP
        >>> len(lines["train"]), lines["valid"][1]                  # doctest: +SKIP
        (1801350, ' = Homarus gammarus = ')
    """
    folder = Path(data_dir) if data_dir is not None else None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir!s} is not a folder with WikiText-103's wiki.train.tokens, "
                                f"wiki.valid.tokens and wiki.test.tokens")
    out = {}
    for split in SPLITS:
        path = folder / f"wiki.{split}.tokens"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (WikiText-103's raw token files)")
        out[split] = path.read_text(encoding="utf-8").splitlines()
    return out


# -- tokenizers ----------------------------------------------------------------------------------------------------

class ByteTokenizer:
    """UTF-8 bytes as tokens (256 ids; nothing to train; every text encodes).

    Examples::

        >>> tok = ByteTokenizer()
        >>> ids = tok.encode("Amen."); ids.tolist(), tok.decode(ids)
        ([65, 109, 101, 110, 46], 'Amen.')
    """

    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(list(text.encode("utf-8")), dtype=torch.int64)

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def state(self) -> dict:
        return {"kind": self.kind}


class BPETokenizer:
    """Byte-level BPE trained with the ``tokenizers`` library (``pip install 'snn_ssm[lm]'``).

    Examples::

        >>> tok = BPETokenizer.train("the lord said unto moses " * 50, vocab_size=300)  # doctest: +SKIP
        >>> tok.decode(tok.encode("the lord said"))                                        # doctest: +SKIP
        'the lord said'
    """

    kind = "bpe"

    def __init__(self, tokenizer):
        self._tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    @staticmethod
    def _lib():
        try:
            import tokenizers
        except ImportError as e:
            raise ImportError("the BPE tokenizer needs the tokenizers library: pip install 'snn_ssm[lm]'") from e
        return tokenizers

    @classmethod
    def train(cls, text: str, vocab_size: int = 8192, cache_dir=None) -> "BPETokenizer":
        """Train on ``text`` (the training split); with ``cache_dir`` the result is kept there, keyed by the text's
        checksum and the vocabulary size, and loaded on the next call."""
        tk = cls._lib()
        key = f"bpe-{vocab_size}-{_sha256(text.encode('utf-8'))[:16]}.json"
        path = Path(cache_dir) / key if cache_dir is not None else None
        if path is not None and path.is_file():
            return cls(tk.Tokenizer.from_file(str(path)))
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(text.splitlines(keepends=True), trainer)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tok.save(str(path))
        return cls(tok)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self._tok.encode(text).ids, dtype=torch.int64)

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids])

    def state(self) -> dict:
        return {"kind": self.kind, "json": self._tok.to_str()}


class WordVocab:
    """Word-level vocabulary (WikiText): whitespace-separated words plus ``<eos>`` at each line's end, ids by
    descending frequency in the training text; words outside it map to ``<unk>``.

    Examples::

        >>> vocab = WordVocab.build(["the cat sat", "the dog"])
        >>> vocab.words
        ['<eos>', 'the', 'cat', 'dog', 'sat', '<unk>']
        >>> vocab.encode_lines(["the dog ran"]).tolist(), vocab.decode([1, 3, 0])
        ([1, 3, 5, 0], 'the dog <eos>')
    """

    kind = "word"

    def __init__(self, words: list[str]):
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vocab_size = len(self.words)

    @classmethod
    def build(cls, lines) -> "WordVocab":
        counts = collections.Counter()
        for line in lines:
            counts.update(line.split())
            counts["<eos>"] += 1
        counts.setdefault("<unk>", 0)
        return cls([w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))])

    def encode_lines(self, lines) -> torch.Tensor:
        unk = self.index["<unk>"]
        ids = []
        for line in lines:
            ids.extend(self.index.get(w, unk) for w in line.split())
            ids.append(self.index["<eos>"])
        return torch.tensor(ids, dtype=torch.int64)

    def encode(self, text: str) -> torch.Tensor:
        unk = self.index["<unk>"]
        return torch.tensor([self.index.get(w, unk) for w in text.split()], dtype=torch.int64)

    def decode(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids)

    def state(self) -> dict:
        return {"kind": self.kind, "words": self.words}


def tokenizer_from_state(state: dict):
    """The tokenizer a checkpoint stored (``tokenizer.state()``)."""
    kind = state.get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer(BPETokenizer._lib().Tokenizer.from_str(state["json"]))
    if kind == "word":
        return WordVocab(state["words"])
    raise ValueError(f"unknown tokenizer kind {kind!r} in the checkpoint")


class TokenChunks(torch.utils.data.Dataset):
    """A token stream as ``(input, target)`` chunks of ``seq_len`` tokens, the target shifted by one.

    The stream is cut into ``streams`` parallel rows (the batch size) read left to right, and example ``i`` is row
    ``i % streams`` at chunk ``i // streams``: batches of ``streams`` consecutive examples are then consecutive
    chunks of every row, so a model can carry its state from one batch to the next (truncated BPTT); shuffled, the
    examples are independent chunks. ``collate`` stacks them time-first: ``([L, B], [L, B])``.

    Examples::

        >>> ds = TokenChunks(torch.arange(21), seq_len=4, streams=2)
        >>> len(ds), ds[0][0].tolist(), ds[1][0].tolist(), ds[2][0].tolist()
        (4, [0, 1, 2, 3], [10, 11, 12, 13], [4, 5, 6, 7])
    """

    def __init__(self, tokens: torch.Tensor, seq_len: int, streams: int):
        if tokens.ndim != 1 or tokens.dtype != torch.int64:
            raise TypeError("tokens must be a 1-D int64 tensor")
        if seq_len < 1 or streams < 1:
            raise ValueError(f"seq_len and streams must be positive, got {seq_len}, {streams}")
        per_row = (tokens.numel() - 1) // streams
        self.chunks_per_row = per_row // seq_len
        if self.chunks_per_row == 0:
            raise ValueError(f"{tokens.numel()} tokens do not fill one chunk of {seq_len} in each of {streams} rows: "
                             f"lower the sequence length or the batch size")
        used = self.chunks_per_row * seq_len
        self.rows = torch.stack([tokens[r * per_row: r * per_row + used + 1] for r in range(streams)])
        self.seq_len, self.streams = seq_len, streams
        self.tokens = self.chunks_per_row * seq_len * streams  # predicted tokens in one pass

    def __len__(self) -> int:
        return self.chunks_per_row * self.streams

    def __getitem__(self, i: int):
        row, chunk = i % self.streams, i // self.streams
        start = chunk * self.seq_len
        piece = self.rows[row, start: start + self.seq_len + 1]
        return piece[:-1], piece[1:]

    @staticmethod
    def collate(items):
        xs, ys = zip(*items)
        return torch.stack(xs, 1), torch.stack(ys, 1)


def data_dir_from_env(data_dir=None):
    """``data_dir``, else ``$SNN_SSM_TEXT`` (a folder made by ``make kjv``), else ``None`` (the embedded sample)."""
    return data_dir or os.environ.get("SNN_SSM_TEXT") or None
