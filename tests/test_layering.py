# -*- test-case-name: tests.test_layering -*-
"""
The import layers of STYLE.md section 5: a layer never imports a higher one,
and protocol packages never import each other.
"""

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

import cgpro

#: package prefix -> layer
LAYERS = [
    ("cgpro.core", 0),
    ("cgpro.directory", 1),
    ("cgpro.storage", 1),
    ("cgpro.store", 1),
    ("cgpro.queue", 2),
    ("cgpro.mail", 3),
    ("cgpro.sip", 3),
    ("cgpro.media", 3),
    ("cgpro.xmpp", 3),
    ("cgpro.http", 3),
    ("cgpro.cli", 3),
    ("cgpro.ldap", 3),
    ("cgpro.pbx", 4),
    ("cgpro.monitor", 4),
    ("cgpro.listeners", 5),
    ("cgpro.service", 5),
    ("cgpro.tap", 5),
]


def layerOf(module):
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, layer
    return None, None


def imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


class LayeringTests(SynchronousTestCase):
    """
    Walk cgpro/ and check every import against the table.
    """

    def test_noUpwardImports(self):
        """No module imports a higher layer or a sibling protocol package."""
        root = os.path.dirname(cgpro.__file__)
        problems = []
        for folder, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(root))[:-3].replace(os.sep, ".")
                module = rel[: -len(".__init__")] if rel.endswith(".__init__") else rel
                package, layer = layerOf(module)
                if layer is None:
                    continue
                for imported in imports(path):
                    target, targetLayer = layerOf(imported)
                    if targetLayer is None or target == package:
                        continue
                    if targetLayer > layer or (targetLayer == layer == 3):
                        problems.append("%s imports %s" % (module, imported))
        self.assertEqual(problems, [])
