"""Datasets: MNIST from IDX files and the embedded subset, sMNIST/psMNIST with the S4 protocol, generated ListOps,
and text for the language models (kjv, WikiText-103) with their tokenizers."""
from .listops import ListOps, bucket_batches
from .mnist import EMBEDDED_TRAIN, embedded_split, load_embedded, load_mnist, read_idx, to_sequence
from .smnist import SequenceMNIST, bitreversal_permutation, mnist_splits
from .text import BPETokenizer, ByteTokenizer, TokenChunks, WordVocab, load_kjv, load_wikitext103, parse_bible_dump

__all__ = ["EMBEDDED_TRAIN", "embedded_split", "to_sequence", "load_embedded", "load_mnist", "read_idx",
           "SequenceMNIST", "bitreversal_permutation", "mnist_splits", "ListOps", "bucket_batches", "load_kjv",
           "load_wikitext103", "parse_bible_dump", "ByteTokenizer", "BPETokenizer", "WordVocab", "TokenChunks"]
