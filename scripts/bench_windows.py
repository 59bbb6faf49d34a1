"""Time the tokenized windows of a corpus: plain ``features.encode`` vs ``hffeatures.window_dataset``
(first run: ``Dataset.map`` + Arrow file; second run: the cached file, memory-mapped).

    python scripts/bench_windows.py --tokenizer models/me5-small --data anercorp:train --window 512 --stride 128
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="a folder with a fast tokenizer (e.g. models/me5-small)")
    parser.add_argument("--data", default="anercorp:train")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=128)
    args = parser.parse_args()

    import datasets
    import transformers

    from kayan.data import corpora
    from kayan.model.features import encode
    from kayan.model.hffeatures import window_dataset

    datasets.disable_progress_bars()
    sentences = corpora.load_split(args.data).sentences
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer)
    labels = sorted({t for s in sentences for t in s.tags})
    label2id = {t: i for i, t in enumerate(labels)}
    options = {"window": args.window, "stride": args.stride, "label2id": label2id}
    started = time.perf_counter()
    plain = encode(sentences, tokenizer, **options)
    plain_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            windows = window_dataset(sentences, tokenizer, cache_dir=cache, **options)
            times.append(time.perf_counter() - started)
            origin = windows.info.description.split(":")[0]
        same = windows["input_ids"] == [f.input_ids for f in plain] and windows["labels"] == [f.labels for f in plain]
        print(json.dumps({
            "data": args.data, "sentences": len(sentences), "windows": len(plain), "tokenizer": args.tokenizer,
            "encode_s": round(plain_s, 2), "first_run_s": round(times[0], 2), "second_run_s": round(times[1], 2),
            "second_run_from": origin, "memory_mapped": bool(windows.cache_files), "same_windows_as_encode": same,
        }, indent=2))


if __name__ == "__main__":
    main()
