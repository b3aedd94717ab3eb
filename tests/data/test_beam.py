"""The cleaner as an Apache Beam transform, on Beam's DirectRunner with two worker processes: the same rows kept
and the same drop reasons as DataCleaner.process on the same real reviews."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from deepseek import InvalidArgumentError, assets
from deepseek.data import DataCleaner

beam = pytest.importorskip("apache_beam")
pytest.importorskip("py3langid")

RULES = {"length": (10, 512), "language": "en", "toxicity": {"threshold": 0.3}, "dedup": {"exact": True},
         "pii": {"email": True}}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    ds = assets.rotten_tomatoes()
    texts = list(ds.texts[:800])
    texts[5] = "short"
    texts[6] = "Write to jane.doe@example.com about this film, it is a fine and moving picture."
    texts += [*texts[100:120], texts[7].upper()]  # exact duplicates, and one that differs only in case
    return [{"content": t} for t in texts]


def test_beam_keeps_what_the_cleaner_keeps(rows, tmp_path, monkeypatch):
    import tempfile

    from apache_beam.options.pipeline_options import PipelineOptions

    # the DirectRunner leaves an empty beam-temp* folder in the temp directory per run: keep it in tmp_path
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    cleaner = DataCleaner(["content"], RULES)
    local = cleaner.process(pd.DataFrame(rows))
    options = PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=2, direct_running_mode="multi_processing")
    with beam.Pipeline(options=options) as p:
        out = p | beam.Create(rows) | cleaner.as_beam_transform(with_dropped=True)
        out["kept"] | "kept" >> beam.Map(json.dumps) | "write kept" >> beam.io.WriteToText(str(tmp_path / "kept"))
        out["dropped"] | "dropped" >> beam.Map(json.dumps) | "write dropped" >> beam.io.WriteToText(
            str(tmp_path / "dropped"))

    def read(prefix: str) -> list[dict]:
        return [json.loads(line) for f in sorted(tmp_path.glob(prefix + "*")) for line in f.read_text().splitlines()]

    kept, dropped = read("kept"), read("dropped")
    assert len(kept) + len(dropped) == len(rows)
    # which copy of a duplicate survives is the runner's choice made deterministic (the smallest row), so compare
    # the texts as the dedup rule sees them
    assert Counter(r["content"].lower() for r in kept) == Counter(c.lower() for c in local["content"])
    assert Counter(r["drop_reason"] for r in dropped) == Counter(
        {k: v for k, v in cleaner.report.dropped.items() if v})
    assert any("<EMAIL>" in r["content"] for r in kept) and not any("@example.com" in r["content"] for r in kept)
    assert Counter(r["drop_reason"] for r in dropped)["duplicate"] >= 20  # the 20 planted copies at least


def test_near_dedup_is_refused_in_beam():
    cleaner = DataCleaner(["content"], {"dedup": {"near": 0.8}})
    with pytest.raises(InvalidArgumentError, match=r"rules\.dedup\.near"):
        cleaner.as_beam_transform()
    with pytest.raises(InvalidArgumentError, match="with_dropped"):
        DataCleaner(["content"], {"length": (1, 10)}).as_beam_transform(with_dropped="yes")
