# -*- test-case-name: tests.pbx.test_rsip -*-
"""
RSIP: the server registers accounts at remote SIP providers and gateways
so that they send incoming PSTN calls here (objects.md section 6,
pbx-apps.md section 4).

For every RSIP record of every account, the Chronos scheduler starts the
C{rsipRegister} application (L{cgpro.pbx.apps.rsipregister}) at the
record's time; it performs one REGISTER transaction: Request-URI the
I{at Host}, To/From the record's address, C{Expires} = period + 2
minutes, digest credentials, and a Contact at this server whose user part
is an opaque token (C{rsip-<hex>}) mapped back to the record.  A call the
provider sends to that Contact is routed to C{gatewayincoming{target}#pbx}
(or straight to the account with the C{*} host prefix).

After each transaction the record's status (time, error) is kept and
shown by C{GETACCOUNTINFO <account> KEY RSIP}.  A failure is retried
after 60 s, doubling up to the period; records changed over the CLI
(C{SETACCOUNTRSIPS}) are rescheduled at once; stopping the server sends
C{Expires: 0} for each registered record.
"""

import hashlib
import os

from twisted.logger import Logger

from cgpro.pbx import pstn

log = Logger()

RETRY = 60


class RSIPRecord:
    """One scheduled registration."""

    def __init__(self, account, name, fields, token):
        self.account = account
        self.name = name
        self.fields = dict(fields)
        self.token = token
        self.period = pstn.rsipPeriod(str(self.fields.get("period", "")))
        self.retry = RETRY
        self.status = {}
        self.registered = False
        # one Call-ID for all of this record's REGISTERs, CSeq growing
        # (RFC 3261 section 10.2)
        self.callId = "rsip-" + os.urandom(8).hex()
        self.cseq = 1

    def nextCSeq(self):
        """@return: the CSeq for the next REGISTER (two apart: room for a digest retry)."""
        cseq = self.cseq
        self.cseq += 2
        return cseq

    def same(self, fields):
        return dict(fields) == self.fields


class RSIPManager:
    """
    @ivar records: C{{(account, name): RSIPRecord}}.
    @ivar byToken: C{{token: RSIPRecord}} for incoming calls.
    """

    def __init__(self, host):
        self.host = host
        self.records = {}
        self.byToken = {}
        #: C{{(account, name): error}} of records that cannot be scheduled
        self.invalid = {}
        self._secret = os.urandom(8)
        self.running = False

    def start(self):
        self.running = True
        directory = self.host.directory
        directory.partObservers.append(self._partChanged)
        directory.infoProviders.append(self.info)
        for domain in list(directory.listDomains()):
            try:
                accounts = directory.listAccounts(domain)
            except Exception:
                continue
            for name in accounts:
                self.refresh("%s@%s" % (name, domain))

    def stop(self):
        self.running = False
        directory = self.host.directory
        for hook, name in ((self._partChanged, "partObservers"), (self.info, "infoProviders")):
            hooks = getattr(directory, name, [])
            if hook in hooks:
                hooks.remove(hook)
        for record in list(self.records.values()):
            self.host.chronos.cancel(("rsip", record.account, record.name))
            if record.registered:
                self.register(record, expires=0)

    def _partChanged(self, account, part):
        if part == "RSIPs" and self.running:
            self.refresh(account)

    def tokenFor(self, account, name):
        digest = hashlib.sha256(self._secret + ("%s/%s" % (account, name)).encode("utf-8"))
        return "rsip-" + digest.hexdigest()[:16]

    def refresh(self, account):
        """(Re)schedule the records of C{account} after a change."""
        try:
            records = self.host.directory.getAccountPart(account, "RSIPs") or {}
        except Exception:
            records = {}
        for key in [k for k in self.records if k[0] == account]:
            old = self.records[key]
            fields = records.get(key[1])
            if fields is None or not old.same(fields):
                self.host.chronos.cancel(("rsip", account, key[1]))
                self.byToken.pop(old.token, None)
                del self.records[key]
        for key in [k for k in self.invalid if k[0] == account]:
            del self.invalid[key]
        for name, fields in records.items():
            if (account, name) in self.records or not isinstance(fields, dict):
                continue
            try:
                record = RSIPRecord(account, name, fields, self.tokenFor(account, name))
            except ValueError as e:
                # one bad record (a period such as "soon") must not keep the
                # account's other records, or the server, from starting
                log.warn("RSIP {account}/{name}: not scheduled: {error}", account=account,
                         name=name, error=str(e))
                self.invalid[(account, name)] = "bad record: %s" % (e,)
                continue
            if record.period is None:
                continue  # "Never"
            self.records[(account, name)] = record
            self.byToken[record.token] = record
            self.host.chronos.schedule(("rsip", account, name), self.host.clock.seconds(),
                                       lambda r=record: self.register(r))

    def register(self, record, expires=None):
        """Run C{rsipRegister} for C{record} (one REGISTER transaction)."""
        from cgpro.pbx.apps import rsipregister

        return rsipregister.register(self, record, expires)

    def done(self, record, error=None):
        """Keep the result and schedule the next REGISTER."""
        now = self.host.clock.seconds()
        record.status = {"Last": now}
        if error:
            record.status["Error"] = error
            delay = min(record.retry, record.period)
            record.retry = min(record.retry * 2, record.period)
            self.host.count("rsip_failures")
        else:
            delay = record.period
            record.retry = RETRY
            self.host.count("rsip_registrations")
        if self.running and (record.account, record.name) in self.records:
            self.host.chronos.schedule(("rsip", record.account, record.name), now + delay,
                                       lambda: self.register(record))

    def info(self, account):
        """C{GETACCOUNTINFO}'s C{RSIP} item: status by record name."""
        found = {}
        for (owner, name), record in self.records.items():
            if owner == account:
                found[name] = dict(record.status) or {"Last": "pending"}
        for (owner, name), error in self.invalid.items():
            if owner == account:
                found[name] = {"Error": error}
        return {"RSIP": found} if found else {}

    def incomingRoute(self, token):
        """
        @return: C{(app, params, account)} for a call to an RSIP Contact,
            or C{None}.
        """
        record = self.byToken.get(token)
        if record is None:
            return None
        target = record.fields.get("targetName") or record.account
        direct = str(record.fields.get("domain", "")).startswith("*")
        return target, direct
