"""
Build hook; metadata and dependencies are in setup.cfg.

Two things setup.cfg cannot say:
  - the twistd plugin lives in C{twisted/plugins/}, a folder that must have
    no C{__init__.py} (it extends Twisted's own plugin package), so it is
    listed as a package by hand;
  - the shipped configuration lives in the top-level C{etc/} (where an
    administrator looks for it) and is copied into the package as
    C{cgpro/etc/} so an installed server finds its port table.

The optional Cython extension C{cgpro.media._relay} (the media relay's
forwarding loop) is built when Cython is importable and
CGPRO_NO_EXTENSIONS is not set, on CPython only; without it the relay uses
its pure-Python fallback (and logs so).  An sdist carries the generated
C{_relay.c} and builds from it without Cython.  A failed compile is an
error: a build that wanted the extension should not quietly ship without it.
"""

import glob
import os
import platform
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """build_py that also ships etc/ inside the package."""

    def run(self):
        build_py.run(self)
        target = os.path.join(self.build_lib, "cgpro", "etc")
        os.makedirs(target, exist_ok=True)
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "etc")
        for path in glob.glob(os.path.join(source, "*")):
            if os.path.isfile(path):
                shutil.copy2(path, target)
            elif os.path.isdir(path):
                # the stock PBX environment (etc/pbx: prompts, billing plans)
                shutil.copytree(path, os.path.join(target, os.path.basename(path)),
                                dirs_exist_ok=True)


def extensions():
    """
    @return: the C{ext_modules} to build: the media relay's loop, or none.
    """
    if os.environ.get("CGPRO_NO_EXTENSIONS") or platform.python_implementation() != "CPython":
        print("cgpro: pure Python build (CGPRO_NO_EXTENSIONS or not CPython)", file=sys.stderr)
        return []
    from setuptools import Extension
    pyx = os.path.join("cgpro", "media", "_relay.pyx")
    generated = pyx[:-len(".pyx")] + ".c"
    if not os.path.exists(pyx) and os.path.exists(generated):
        # an sdist: it ships the C that Cython generated
        print("cgpro: accelerated build (cgpro.media._relay, from C)", file=sys.stderr)
        return [Extension("cgpro.media._relay", [generated])]
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("cgpro: pure Python build (Cython not installed)", file=sys.stderr)
        return []
    print("cgpro: accelerated build (cgpro.media._relay)", file=sys.stderr)
    return cythonize([Extension("cgpro.media._relay", [pyx])],
                     compiler_directives={"language_level": "3"}, quiet=True)


setup(
    ext_modules=extensions(),
    packages=find_packages(include=["cgpro", "cgpro.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["cgpro_plugin.py"]},
    cmdclass={"build_py": BuildPy},
)
