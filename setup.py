"""The compiled kernels of the worker (monitor_worker.native._histogram, ._columns). Everything else of
the build is in pyproject.toml. ``optional=True``: where no C compiler is at hand the package
still installs and the worker uses the numpy path (same results, slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor_worker.native._histogram",
            ["monitor_worker/native/_histogram.c"],
            extra_compile_args=["-O3", "-std=c11"],
            optional=True,
        ),
        Extension(
            "monitor_worker.native._columns",
            ["monitor_worker/native/_columns.c"],
            extra_compile_args=["-O3", "-std=c11"],
            optional=True,
        ),
    ]
)
