"""Build script for the one C extension (everything else is in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "genrekit.audio._hpss",
            sources=["src/genrekit/audio/_hpss.c"],
            # -ffp-contract=off: no fused multiply-adds, so the soft mask rounds like NumPy.
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
    ]
)
