"""Build hook: ship the top-level ``scenarios/`` and ``strategies/`` catalogue inside the package.

The YAML catalogue's source stays in the repository's top-level folders; building a wheel (or a non-editable
install) copies them to ``ebv_cl/_catalogue/<kind>/`` so an installed ebv-cl finds its named scenarios and
strategies from any working directory. Everything else is declared in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGUE_KINDS = ("scenarios", "strategies")


class BuildPyWithCatalogue(build_py):
    """``build_py`` that also copies the YAML catalogue into the built package."""

    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for kind in CATALOGUE_KINDS:
            target = Path(self.build_lib) / "ebv_cl" / "_catalogue" / kind
            self.mkpath(str(target))
            for source in sorted((root / kind).glob("*.yaml")):
                self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithCatalogue})
