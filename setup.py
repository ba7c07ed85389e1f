"""
Build hook; metadata and dependencies are in setup.cfg.

Two things setup.cfg cannot say:
  - the twistd plugin lives in C{twisted/plugins/}, a folder that must have
    no C{__init__.py} (it extends Twisted's own plugin package), so it is
    listed as a package by hand;
  - the shipped configuration lives in the top-level C{etc/} (where an
    administrator looks for it) and is copied into the package as
    C{cgpro/etc/} so an installed server finds its port table.

The media issue adds the optional Cython extension C{cgpro.media._relay}
here (skipped with CGPRO_NO_EXTENSIONS=1).
"""

import glob
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """build_py that also ships etc/ inside the package."""

    def run(self):
        build_py.run(self)
        target = os.path.join(self.build_lib, "cgpro", "etc")
        os.makedirs(target, exist_ok=True)
        for path in glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "etc", "*")):
            if os.path.isfile(path):
                shutil.copy2(path, target)


setup(
    packages=find_packages(include=["cgpro", "cgpro.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["cgpro_plugin.py"]},
    cmdclass={"build_py": BuildPy},
)
