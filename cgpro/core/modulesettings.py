# -*- test-case-name: tests.core.test_modulesettings -*-
"""
Module settings: built-in defaults, the stored overrides, and their parsed
form, the same way for every protocol module.

A module keeps its built-in defaults in one dictionary in its own package;
the stored dictionary (C{directory.getServerDict("Modules")[NAME]}, changed
over the CLI with C{UPDATEMODULE NAME {...}}) is merged over them each time
a session starts, so a change applies to the next connection without a
restart.  Values stay as the data format stores them (C{"YES"}, C{"10M"},
C{"5m"}, arrays) and are parsed once per session; a value an administrator
mistyped is logged and replaced by its default, never breaking a listener.
"""

from twisted.logger import Logger

from cgpro.core import dataformat

log = Logger()


def yes(value):
    """
    @return: C{bool} from YES/NO (also TRUE/FALSE, ON/OFF, 1/0).
    """
    text = str(value).strip().upper()
    if text in ("YES", "TRUE", "1", "ON"):
        return True
    if text in ("NO", "FALSE", "0", "OFF", ""):
        return False
    raise ValueError("expected YES or NO, not %r" % (value,))


def count(value):
    """
    @return: a non-negative C{int}.
    """
    number = int(str(value).strip())
    if number < 0:
        raise ValueError("negative count %r" % (value,))
    return number


def duration(value):
    """
    @return: seconds (C{"never"}/C{"-1"} give 0: no limit).
    """
    seconds = dataformat.parseDuration(value)
    return seconds if seconds is not None else 0


def choice(*choices):
    """
    @return: a parser accepting one of C{choices} (any case), returning it
        as spelled here.
    """

    def parse(value):
        text = str(value).strip().upper()
        for option in choices:
            if option.upper() == text:
                return option
        raise ValueError("expected one of %s, not %r" % ("/".join(choices), value))

    return parse


class ModuleSettings:
    """
    The effective settings of one session, parsed.  Subclasses set
    L{DEFAULTS}, L{PARSERS} (key -> (attribute, parser)) and L{MODULE}.

    @ivar raw: the merged dictionary (defaults, then the stored values).
    """

    DEFAULTS = {}
    PARSERS = {}
    MODULE = "?"

    def __init__(self, stored=None, defaults=None, module=None):
        defaults = self.DEFAULTS if defaults is None else defaults
        module = module or self.MODULE
        merged = dict(defaults)
        if isinstance(stored, dict):
            merged.update(stored)
        self.raw = merged
        for key, (attribute, parse) in self.PARSERS.items():
            try:
                value = parse(merged.get(key, defaults[key]))
            except (TypeError, ValueError) as e:
                log.warn(
                    "module {module} setting {key} = {value!r} is invalid ({error});"
                    " using the default {default!r}",
                    module=module, key=key, value=merged.get(key), error=e,
                    default=defaults[key],
                )
                value = parse(defaults[key])
            setattr(self, attribute, value)

    @classmethod
    def load(cls, directory, module=None, defaults=None):
        """
        Read a module's current settings from the directory.
        """
        module = module or cls.MODULE
        stored = {}
        getServerDict = getattr(directory, "getServerDict", None)
        if getServerDict is not None:
            stored = (getServerDict("Modules") or {}).get(module) or {}
        return cls(stored, defaults, module)
