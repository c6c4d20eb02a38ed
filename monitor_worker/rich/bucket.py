"""The window side of texts, embeddings and serving measures: one :class:`RichBucket` per time
bucket, beside the tabular sketches of :class:`monitor_worker.window.Bucket`, mergeable across
buckets and replicas and serialisable for snapshots and the shared store.

Memory per bucket, whatever the traffic (the window holds ``window.buckets`` of them):

- per descriptor series, a 1000-bin histogram, as a numerical feature has;
- one sample of descriptor rows (the tabular reservoir's capacity x series, float64), so that
  small windows are tested on raw values like numerical features;
- per embedding feature, ``sampleSize x dimension`` float32 (1000 x 384: 1.5 MB);
- per ``embed: true`` feature, ``sampleSize`` texts of at most 2048 characters;
- per serving measure, a DDSketch of at most 2 x 2048 + 1 counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ingest import Batch
from ..stats import NumericHistogram, Reservoir
from ..stats.quantiles import ServingMeasures
from ..stats.text import TextSample
from .profile import RichProfile


@dataclass
class RichBucket:
    descriptors: dict[str, NumericHistogram] = field(default_factory=dict)
    #: Rows of every descriptor series (columns in ``RichProfile.series`` order).
    descriptor_sample: Reservoir | None = None
    vectors: dict[str, Reservoir] = field(default_factory=dict)  # embedding features
    texts: dict[str, TextSample] = field(default_factory=dict)  # embed: true features
    measures: ServingMeasures | None = None

    @classmethod
    def empty(cls, profile: RichProfile, start: float, capacity: int) -> RichBucket:
        seed = int(start) & 0xFFFFFFFF
        series = profile.series
        return cls(
            descriptors={s: NumericHistogram(profile.binnings[s]) for s in series},
            descriptor_sample=Reservoir(len(series), capacity, seed=seed) if series else None,
            vectors={
                name: Reservoir(ref.dimension, profile.sample_size, seed + i + 1, np.float32)
                for i, (name, ref) in enumerate(profile.vectors.items())
                if name not in profile.embedded
            },
            texts={
                name: TextSample(profile.sample_size, seed + 1000 + i)
                for i, name in enumerate(profile.embedded)
                if name in profile.vectors  # without a reference nothing is compared
            },
            measures=ServingMeasures(profile.measures) if profile.measures else None,
        )

    def add(self, profile: RichProfile, batch: Batch, rows: slice | np.ndarray) -> None:
        """Add the selected rows of ``batch`` (its descriptors were computed by
        :meth:`RichProfile.describe`)."""
        if self.descriptors and batch.descriptors:
            columns = [batch.descriptors[s][rows] for s in profile.series]
            for s, values in zip(profile.series, columns, strict=True):
                self.descriptors[s].update(values)
            assert self.descriptor_sample is not None
            self.descriptor_sample.update(np.column_stack(columns))
        for name, reservoir in self.vectors.items():
            reservoir.update(batch.vectors[name][rows])
        for name, sample in self.texts.items():
            max_chars = profile.max_chars[name]
            sample.update([t[:max_chars] for t in batch.texts[name][rows].tolist() if t])
        if self.measures is not None and batch.measures:
            self.measures.update({k: v[rows] for k, v in batch.measures.items()})

    def merge(self, other: RichBucket) -> RichBucket:
        for s, h in other.descriptors.items():
            self.descriptors[s].merge(h)
        if self.descriptor_sample is not None and other.descriptor_sample is not None:
            self.descriptor_sample.merge(other.descriptor_sample)
        for name, r in other.vectors.items():
            self.vectors[name].merge(r)
        for name, t in other.texts.items():
            self.texts[name].merge(t)
        if self.measures is not None and other.measures is not None:
            self.measures.merge(other.measures)
        return self

    def copy(self) -> RichBucket:
        return RichBucket(
            descriptors={k: v.copy() for k, v in self.descriptors.items()},
            descriptor_sample=(
                self.descriptor_sample.copy() if self.descriptor_sample is not None else None
            ),
            vectors={k: v.copy() for k, v in self.vectors.items()},
            texts={k: v.copy() for k, v in self.texts.items()},
            measures=self.measures.copy() if self.measures is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "descriptors": {k: v.to_dict() for k, v in self.descriptors.items()},
            "descriptor_sample": (
                self.descriptor_sample.to_dict() if self.descriptor_sample is not None else None
            ),
            "vectors": {k: v.to_dict() for k, v in self.vectors.items()},
            "texts": {k: v.to_dict() for k, v in self.texts.items()},
            "measures": self.measures.to_dict() if self.measures is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], profile: RichProfile) -> RichBucket:
        """Inverse of :meth:`to_dict`; a document of another profile raises KeyError or
        ValueError (the snapshot is then set aside)."""
        descriptors = {
            k: NumericHistogram.from_dict(v, profile.binnings[k])
            for k, v in d["descriptors"].items()
        }
        if set(descriptors) != set(profile.series):
            raise ValueError("descriptor series differ from this profile's")
        sample = d.get("descriptor_sample")
        measures = d.get("measures")
        return cls(
            descriptors=descriptors,
            descriptor_sample=Reservoir.from_dict(sample) if sample is not None else None,
            vectors={k: Reservoir.from_dict(v) for k, v in d["vectors"].items()},
            texts={k: TextSample.from_dict(v) for k, v in d["texts"].items()},
            measures=ServingMeasures.from_dict(measures) if measures is not None else None,
        )
