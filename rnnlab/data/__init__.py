"""Data for text tasks: the IMDb reviews, a tokenizer and vocabulary, length-bucketed batches.

    python -c "from rnnlab.data import load_imdb; print(load_imdb())"

Nothing here imports a task or a model; tasks build on these pieces.
"""

from .bucketing import BucketBatchSampler, pad_batch
from .imdb import (
    ARCHIVE_NAME,
    IMDB_MD5,
    IMDB_SIZE,
    IMDB_URL,
    LABELS,
    EncodedSplit,
    ImdbData,
    download_imdb,
    find_imdb,
    iter_reviews,
    load_imdb,
    user_cache_dir,
)
from .text import PAD, PAD_ID, TOKENIZER_VERSION, UNK, UNK_ID, Vocab, tokenize, truncate

__all__ = [
    "BucketBatchSampler",
    "pad_batch",
    "ARCHIVE_NAME",
    "IMDB_MD5",
    "IMDB_SIZE",
    "IMDB_URL",
    "LABELS",
    "EncodedSplit",
    "ImdbData",
    "download_imdb",
    "find_imdb",
    "iter_reviews",
    "load_imdb",
    "user_cache_dir",
    "PAD",
    "PAD_ID",
    "TOKENIZER_VERSION",
    "UNK",
    "UNK_ID",
    "Vocab",
    "tokenize",
    "truncate",
]
