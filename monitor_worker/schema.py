"""The data schema a worker expects: features with their types, and the roles of the
prediction, score and label columns. Declared in the config or inferred from the reference."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mm_api.worker_config import WorkerConfig


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # "numerical" | "categorical"

    @property
    def numerical(self) -> bool:
        return self.type == "numerical"


@dataclass(frozen=True)
class DataSchema:
    features: tuple[Feature, ...]
    task: str
    classes: tuple[str, ...] | None = None
    positive_class: str = "1"

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def numerical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.numerical)

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if not f.numerical)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @property
    def multiclass(self) -> bool:
        return self.task == "multiclass-classification"


def schema_from_config(config: WorkerConfig, inferred: list[Feature] | None) -> DataSchema:
    """Declared features win; otherwise the ones inferred from the reference."""
    if config.data.features:
        features = tuple(Feature(f.name, f.type) for f in config.data.features)
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
    )
