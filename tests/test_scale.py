"""kayan.scale.tag_dataset on a local Ray cluster writes what `kayan predict --out` writes (issue 23, part 2).

Ray runs in a child process, so that its start (logging handlers, signal handlers, environment) leaves
the test session as it was."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kayan.inference.bulk import Job, LoadOptions, tag_archive
from tests.test_predict_streams import _article

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed (pip install -e '.[scale]')")

ON_RAY = """
import json, sys
import ray
from kayan.inference.archive import read_documents
from kayan.scale import tag_dataset

model, source, out = sys.argv[1:]
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
try:
    rows = [{"source": p.source, "text": p.text} for p in read_documents([source])]
    tagged = tag_dataset(ray.data.from_items(rows), model, actors=2, batch_size=40, backend="torch").take_all()
finally:
    ray.shutdown()
with open(out, "w", encoding="utf-8") as handle:
    json.dump([{"source": row["source"], "record": row["record"]} for row in tagged], handle, ensure_ascii=False)
"""


def test_tag_dataset_writes_the_records_of_predict_out(built, tmp_path):
    source = tmp_path / "news.txt"
    source.write_text(_article(150), encoding="utf-8")
    tag_archive(Job(str(built["noisy"]), [str(source)], tmp_path / "out", shard_size=40,
                    load=LoadOptions(backend="torch", threads=1)))
    expected = [line for shard in sorted((tmp_path / "out").glob("shard-*.jsonl"))
                for line in shard.read_text(encoding="utf-8").splitlines()]
    done = subprocess.run([sys.executable, "-c", ON_RAY, str(built["noisy"]), str(source), str(tmp_path / "ray.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "ray.json").read_text(encoding="utf-8"))
    assert all(json.loads(row["record"])["source"] == row["source"] for row in rows)
    order = {json.loads(line)["source"]: n for n, line in enumerate(expected)}
    assert [row["record"] for row in sorted(rows, key=lambda row: order[row["source"]])] == expected
