"""Which packages the distribution holds; everything else is in pyproject.toml.

Here and not in pyproject.toml because the bundled implementations live in the top-level
`implementations/` folder (one sub-folder per style, named like `numpy-vectorized`) and a wheel
or sdist must carry them: they are installed as the data-only package `bench_implementations`,
which `bench.plugins.discovery` finds when no checkout's `implementations/` is beside `bench/`.
pyproject.toml's `packages.find` cannot map a folder to a package of another name, and its
`package-data` would replace the one here, so both live here.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["bench", "bench.*"]), "bench_implementations"],
    package_dir={"bench_implementations": "implementations"},
    package_data={
        "bench": ["templates/*", "templates/rust/*", "report/templates/*", "serving/proto/*.proto"],
        "bench_implementations": ["*/*.py", "*/*.toml", "*/src/*.rs"],
    },
)
