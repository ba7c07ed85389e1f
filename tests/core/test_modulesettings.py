# -*- test-case-name: tests.core.test_modulesettings -*-
"""
Tests for L{cgpro.core.modulesettings}.
"""

from twisted.trial.unittest import SynchronousTestCase

from cgpro.core.modulesettings import ModuleSettings, choice, count, duration, yes


class Example(ModuleSettings):
    DEFAULTS = {"Flag": "NO", "Limit": "10", "Wait": "5m", "Mode": "Fast"}
    PARSERS = {
        "Flag": ("flag", yes),
        "Limit": ("limit", count),
        "Wait": ("wait", duration),
        "Mode": ("mode", choice("Fast", "Safe")),
    }
    MODULE = "EXAMPLE"


class FakeDirectory:
    def __init__(self, modules):
        self.modules = modules

    def getServerDict(self, name):
        return self.modules


class ModuleSettingsTests(SynchronousTestCase):
    """
    Defaults, stored overrides, bad values.
    """

    def test_defaults(self):
        """Without stored values the parsed defaults apply."""
        s = Example()
        self.assertEqual((s.flag, s.limit, s.wait, s.mode), (False, 10, 300, "Fast"))

    def test_stored(self):
        """Stored values override the defaults, parsed; case does not matter for choices."""
        s = Example.load(FakeDirectory({"EXAMPLE": {"Flag": "yes", "Limit": "3", "Mode": "safe"}}))
        self.assertEqual((s.flag, s.limit, s.mode), (True, 3, "Safe"))
        self.assertEqual(s.raw["Wait"], "5m")

    def test_badValueFallsBack(self):
        """A mistyped value is logged and replaced by its default."""
        s = Example({"Limit": "-1", "Flag": "maybe"})
        self.assertEqual((s.limit, s.flag), (10, False))
