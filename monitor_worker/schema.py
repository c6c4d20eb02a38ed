"""The data schema a worker expects: features with their types, the roles of the prediction,
score and label columns, and the serving measures records may carry. Declared in the config
or inferred from the reference."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mm_api.sections import DEFAULT_MAX_CHARS
from mm_api.worker_config import WorkerConfig


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # "numerical" | "categorical" | "text" | "embedding"
    dimension: int | None = None  # embedding: numbers per vector
    embed: bool = False  # text: embedded by the worker too
    max_chars: int = DEFAULT_MAX_CHARS  # text: longer texts are cut

    @property
    def numerical(self) -> bool:
        return self.type == "numerical"


@dataclass(frozen=True)
class DataSchema:
    features: tuple[Feature, ...]
    task: str
    classes: tuple[str, ...] | None = None
    positive_class: str = "1"
    #: Names of the serving measures a record may carry (``measures: {...}``).
    measures: tuple[str, ...] = ()

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def numerical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.numerical)

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.type == "categorical")

    @property
    def tabular_width(self) -> int:
        """Columns of a reservoir row: numerical, then categorical features."""
        return len(self.numerical) + len(self.categorical)

    @cached_property
    def texts(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.type == "text")

    @cached_property
    def embeddings(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.type == "embedding")

    @cached_property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    @property
    def rich(self) -> bool:
        """Texts, vectors or serving measures: the parts of monitor_worker/rich."""
        return bool(self.texts or self.embeddings or self.measures)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @property
    def multiclass(self) -> bool:
        return self.task == "multiclass-classification"


def schema_from_config(config: WorkerConfig, inferred: list[Feature] | None) -> DataSchema:
    """Declared features win; otherwise the ones inferred from the reference."""
    if config.data.features:
        features = tuple(
            Feature(
                f.name,
                f.type,
                dimension=f.dimension,
                embed=bool(f.embed),
                max_chars=f.max_chars or DEFAULT_MAX_CHARS,
            )
            for f in config.data.features
        )
    elif inferred:
        features = tuple(inferred)
    else:
        raise ValueError(
            "data.features: no features declared and no reference to infer them from "
            "(set data.features or data.reference)"
        )
    return DataSchema(
        features=features,
        task=config.model.task,
        classes=tuple(config.model.classes) if config.model.classes else None,
        positive_class=config.model.positive_class,
        measures=tuple(m.name for m in config.measures),
    )
