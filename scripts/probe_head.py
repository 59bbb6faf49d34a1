"""A copy of a package whose classifier head is refitted as a linear probe on its frozen encoder.

For measuring what int8 costs when no fine-tuned model is at hand: a head fitted on real labels
has real decision margins (a random or untrained head has none, and tags everything ``O`` or
nothing consistently), so F1 and tag agreement between PyTorch and int8 mean something. The
encoder is left as it is; only the head's weights change, and kayan.json's digests are updated (through its writer).

    python scripts/probe_head.py models/onnx-me5 /tmp/me5-probe [--sentences 1500] [--steps 1500]

The head is a softmax regression on each word's first-subword state (as Kayan decodes), fitted
full-batch with Adam on the first ``--sentences`` of ANERcorp train (dev block held out).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a folder written by `kayan package`")
    parser.add_argument("target", type=Path, help="the copy to write (a package already there is replaced; nothing else is)")
    parser.add_argument("--sentences", type=int, default=1500, help="ANERcorp train sentences to fit on (default 1500)")
    parser.add_argument("--steps", type=int, default=1500, help="full-batch Adam steps (default 1500)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch
    import transformers

    from kayan import outputs
    from kayan.data import corpora
    from kayan.errors import KayanError
    from kayan.files import sha256_of
    from kayan.model import modelref, settings
    from kayan.model.modeling import position_limit
    from kayan.model.tagging import score_words

    torch.set_num_threads(args.threads)
    try:  # never the source itself, a folder holding it, or a folder that is not a package
        outputs.check_replaceable(args.target, outputs.PACKAGE, inputs=[args.source], overwrite=True, fix="choose another target")
    except KayanError as error:
        raise SystemExit(f"probe_head: {error}") from None
    shutil.rmtree(args.target, ignore_errors=True)
    shutil.copytree(args.source, args.target, ignore=shutil.ignore_patterns("onnx"))
    model = transformers.AutoModelForTokenClassification.from_pretrained(str(args.target)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(args.target))
    stored = modelref.read_settings(args.target)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    options = modelref.tagging_options(args.target, stored, id2label, position_limit(model.config, tokenizer))
    train = corpora.load_split("anercorp:train", hold_out_dev=True).sentences[: args.sentences]

    # First-subword states: the model with an identity head "scores" each word with its hidden state
    head, model.classifier = model.classifier, torch.nn.Identity()
    start = time.perf_counter()
    states = score_words(model, tokenizer, [s.words for s in train], options, n_labels=model.config.hidden_size)
    x = torch.from_numpy(np.concatenate(states)).float()
    label2id = {tag: i for i, tag in id2label.items()}
    y = torch.tensor([label2id[tag] for s in train for tag in s.tags])
    probe = torch.nn.Linear(x.shape[1], len(id2label))
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(args.steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(x), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        head.weight.copy_(probe.weight)
        head.bias.copy_(probe.bias)
        accuracy = (probe(x).argmax(1) == y).float().mean().item()
    model.classifier = head
    model.save_pretrained(str(args.target))
    digest = sha256_of(args.target / "model.safetensors")
    settings.write(args.target, dataclasses.replace(stored, weights_sha256=digest,
                                                    files={**(stored.files or {}), "model.safetensors": digest}))
    print(f"{args.target}: head fitted on {len(y)} words in {time.perf_counter() - start:.0f} s "
          f"(train loss {loss.item():.3f}, tag accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
