"""Build script for the one C extension (everything else is in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("genrekit._median", sources=["src/genrekit/_median.c"], extra_compile_args=["-O3"]),
    ]
)
