#!/usr/bin/env python3
"""
Regenerate C{etc/CGPRO-MIB.txt} from the statistics catalog
(L{cgpro.core.stats.CATALOG}), so the MIB file and the SNMP agent describe
the same figures.  Run it after changing the catalog (and bump
L{cgpro.monitor.mib.REVISION}); C{tests.monitor.test_snmp} fails while the
file is out of date.

Usage: C{python scripts/genmib.py [--check] [PATH]}
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cgpro.core.stats import CATALOG  # noqa: E402
from cgpro.monitor.mib import generate  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "etc", "CGPRO-MIB.txt")


def main(argv):
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    path = paths[0] if paths else DEFAULT
    text = generate(CATALOG)
    if check:
        with open(path) as f:
            if f.read() != text:
                print("%s is out of date: run scripts/genmib.py" % (path,))
                return 1
        return 0
    with open(path, "w") as f:
        f.write(text)
    print("wrote %s" % (path,))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
