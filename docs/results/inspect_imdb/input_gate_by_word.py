"""The input gate's mean over units and both directions at each word, from inspect's gates.npz.

    python docs/results/inspect_imdb/input_gate_by_word.py RUN/inspect/<time>-text-... > input_gate_by_word.json
"""

import json
import sys

import numpy as np

out = {}
for folder in sys.argv[1:]:
    a = np.load(f"{folder}/gates.npz")
    mean = (a["layer0.forward.input_gate"].mean(1) + a["layer0.backward.input_gate"].mean(1)) / 2
    out[folder.rstrip("/").split("-text-", 1)[1]] = [[str(t), round(float(m), 3)] for t, m in zip(a["tokens"], mean)]
print(json.dumps(out, indent=1))
