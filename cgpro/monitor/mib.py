# -*- test-case-name: tests.monitor.test_snmp -*-
"""
The cgpro MIB: where each figure of L{cgpro.core.stats.CATALOG} lives in
the SNMP tree, and the SMIv2 text of C{etc/CGPRO-MIB.txt} generated from
the same table (C{scripts/genmib.py}), so the agent and the MIB file can
never disagree.

Layout, under L{ROOT} (C{cgproMIB}; C{cgproObjects} is C{ROOT.1}), with
C{c} the catalog's SNMP column of a figure:

  - a figure without labels is a scalar C{cgproObjects.c}, its one
    instance C{cgproObjects.c.0};
  - a figure with labels is a table C{cgproObjects.c}, entry C{.1}, whose
    columns are the labels (C{.1} .. C{.k}, index columns, not accessible)
    and the value (C{.k+1}); a row's index is its label values, each as a
    length-prefixed string (an C{OCTET STRING} index without C{IMPLIED}),
    so C{snmpwalk} with the MIB loaded shows C{cgproSipRequestsTotalValue
    ."INVITE"}.

Counters are C{Counter64}, gauges C{Gauge32}.  Label values longer than
L{LABEL_MAX} octets are not published over SNMP (the MIB limits index
strings so an instance stays within the 128 sub-identifiers of an OID).

L{ROOT} is C{experimental.7106} (C{1.3.6.1.3.7106}), a placeholder: the
experimental arc is meant for experiments, not products; a deployment that
needs a stable registration should move the tree under a Private
Enterprise Number assigned by IANA (change L{ROOT} and regenerate).
"""

#: C{cgproMIB}: the module's own OID (C{experimental 7106}, see above).
ROOT = (1, 3, 6, 1, 3, 7106)
#: where the figures live
OBJECTS = ROOT + (1,)
#: the longest label value published, in octets (UTF-8)
LABEL_MAX = 32
#: the module's LAST-UPDATED; bump with each change of the catalog
REVISION = "202611220000Z"

_SYNTAX = {"counter": "Counter64", "gauge": "Gauge32"}


def descriptor(name):
    """
    @return: the MIB descriptor of a catalog name:
        C{cgpro_sip_requests_total} -> C{cgproSipRequestsTotal}.
    """
    words = name.split("_")
    return words[0] + "".join(w.capitalize() for w in words[1:])


def layout(catalog):
    """
    @param catalog: rows of L{cgpro.core.stats.CATALOG} shape.
    @return: C{dict} name -> C{(oid of the object, value column or None)}:
        a scalar's object OID (its instance adds C{.0}), or for a table
        the OID of its value column and that column number.
    """
    out = {}
    for name, kind, doc, labels, column in catalog:
        if labels:
            out[name] = (OBJECTS + (column, 1, len(labels) + 1), len(labels) + 1)
        else:
            out[name] = (OBJECTS + (column,), None)
    return out


def encodeIndex(labelValues):
    """
    @return: the index sub-identifiers of a row, or C{None} when a label
        value is too long to publish.
    """
    out = ()
    for value in labelValues:
        raw = str(value).encode("utf-8")
        if len(raw) > LABEL_MAX:
            return None
        out += (len(raw),) + tuple(raw)
    return out


def _quoted(text):
    if '"' in text:
        raise ValueError("a MIB DESCRIPTION cannot hold a double quote: %r" % (text,))
    return '"%s"' % (text,)


def _object(name, syntax, access, description, parent, number, extra=""):
    return (
        "%s OBJECT-TYPE\n"
        "    SYNTAX      %s\n"
        "    MAX-ACCESS  %s\n"
        "    STATUS      current\n"
        "    DESCRIPTION\n"
        "        %s\n"
        "%s"
        "    ::= { %s %d }\n" % (name, syntax, access, _quoted(description), extra, parent, number)
    )


def generate(catalog):
    """
    @param catalog: rows of L{cgpro.core.stats.CATALOG} shape.
    @return: the text of C{CGPRO-MIB}.
    """
    parts = [_HEADER % {"revision": REVISION, "arc": ROOT[-1]}]
    group = []
    for name, kind, doc, labels, column in sorted(catalog, key=lambda row: row[4]):
        base = descriptor(name)
        syntax = _SYNTAX[kind]
        what = "%s (%s %s)." % (doc.rstrip("."), kind, name)
        if kind == "counter":
            what += " Restarts from zero with the server (see sysUpTime)."
        if not labels:
            parts.append(_object(base, syntax, "read-only", what, "cgproObjects", column))
            group.append(base)
            continue
        table, entry = base + "Table", base + "Entry"
        entryType = entry[0].upper() + entry[1:]
        indexNames = [base + label.capitalize() for label in labels]
        value = base + "Value"
        parts.append(_object(table, "SEQUENCE OF " + entryType, "not-accessible",
                             what, "cgproObjects", column))
        parts.append(_object(
            entry, entryType, "not-accessible",
            "One row of %s per %s." % (name, ", ".join(labels)),
            table, 1, extra="    INDEX       { %s }\n" % (", ".join(indexNames),)))
        width = max(len(n) for n in indexNames + [value]) + 2
        members = ["    %s%s" % (n.ljust(width), "DisplayString") for n in indexNames]
        members.append("    %s%s" % (value.ljust(width), syntax))
        parts.append("%s ::= SEQUENCE {\n%s\n}\n" % (entryType, ",\n".join(members)))
        for number, (label, indexName) in enumerate(zip(labels, indexNames), 1):
            parts.append(_object(
                indexName, "DisplayString (SIZE (0..%d))" % (LABEL_MAX,), "not-accessible",
                "The %s label of the row (values longer than %d octets are not "
                "published)." % (label, LABEL_MAX), entry, number))
        parts.append(_object(value, syntax, "read-only",
                             "The value of %s for this row." % (name,), entry, len(labels) + 1))
        group.append(value)
    parts.append(_FOOTER % {"objects": ",\n".join("        " + g for g in group)})
    return "\n".join(parts)


_HEADER = """\
-- CGPRO-MIB: the figures of a cgpro server (the catalog of
-- cgpro/core/stats.py), as its SNMP agent publishes them.
--
-- GENERATED by scripts/genmib.py from cgpro.core.stats.CATALOG: do not
-- edit; change the catalog and run the script again.

CGPRO-MIB DEFINITIONS ::= BEGIN

IMPORTS
    MODULE-IDENTITY, OBJECT-TYPE, Counter64, Gauge32, experimental
        FROM SNMPv2-SMI
    DisplayString
        FROM SNMPv2-TC
    MODULE-COMPLIANCE, OBJECT-GROUP
        FROM SNMPv2-CONF;

cgproMIB MODULE-IDENTITY
    LAST-UPDATED "%(revision)s"
    ORGANIZATION "The cgpro project"
    CONTACT-INFO
        "The cgpro project: see README.rst in the distribution."
    DESCRIPTION
        "The counters and gauges of a cgpro server (a CommuniGate
        Pro-compatible mail, SIP and CLI server), one object per figure
        of its statistics catalog.  Figures without labels are scalars;
        figures with labels are tables indexed by their label values.

        The module sits under the experimental arc (experimental %(arc)d)
        as a placeholder until the project registers a Private Enterprise
        Number."
    REVISION    "%(revision)s"
    DESCRIPTION
        "Generated from the statistics catalog."
    ::= { experimental %(arc)d }

cgproObjects     OBJECT IDENTIFIER ::= { cgproMIB 1 }
cgproConformance OBJECT IDENTIFIER ::= { cgproMIB 2 }
cgproCompliances OBJECT IDENTIFIER ::= { cgproConformance 1 }
cgproGroups      OBJECT IDENTIFIER ::= { cgproConformance 2 }
"""

_FOOTER = """\
cgproCompliance MODULE-COMPLIANCE
    STATUS      current
    DESCRIPTION
        "A cgpro agent publishes every figure of the catalog."
    MODULE      -- this module
        MANDATORY-GROUPS { cgproFiguresGroup }
    ::= { cgproCompliances 1 }

cgproFiguresGroup OBJECT-GROUP
    OBJECTS {
%(objects)s
    }
    STATUS      current
    DESCRIPTION
        "The figures of the statistics catalog."
    ::= { cgproGroups 1 }

END
"""
