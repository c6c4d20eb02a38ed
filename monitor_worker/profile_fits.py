"""The models of a profile that scikit-learn fits, apart from the reading of its reference.

Building a profile (:func:`monitor_worker.profile.profile_and_fits`) reads the reference with
pyarrow and gathers what each such model is fitted on as numpy arrays: the outlier detector's
rows, CBPE's or DLE's inputs. :meth:`ProfileFits.run` fits them where scikit-learn may be
imported; :meth:`ProfileFits.apply` puts the models into the profile. The loader runs the
reading and the fits in two child processes, the second after the first has ended, so that
pyarrow, scikit-learn and the reference are never resident in one process (docs/benchmarks.md,
"Memory and references of any size"). Importing this module imports neither library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .estimation import EstimatorFit
from .outliers import OutlierFit

if TYPE_CHECKING:
    from .profile import Profile


@dataclass
class ProfileFits:
    """The fits a profile still needs (None: that model is not fitted)."""

    outliers: OutlierFit | None = None
    estimator: EstimatorFit | None = None

    def __bool__(self) -> bool:
        return self.outliers is not None or self.estimator is not None

    def run(self) -> tuple[Any, Any]:
        """What each fit returns, fitted in this process (which imports scikit-learn)."""
        return (
            None if self.outliers is None else self.outliers.run(),
            None if self.estimator is None else self.estimator.run(),
        )

    def apply(self, profile: Profile, fitted: tuple[Any, Any]) -> None:
        """Put what :meth:`run` returned into ``profile``."""
        detector, model = fitted
        if self.outliers is not None:
            profile.detector = self.outliers.detector(detector)
        if self.estimator is not None:
            self.estimator.apply(profile.estimation, model)
