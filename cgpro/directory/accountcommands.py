# -*- test-case-name: tests.cli.test_commands -*-
"""
Account commands of the administrative command table (cli.md 6.2).

Who may do what (objects.md section 8): server administrators everything;
a Domain Administrator (right C{Domain}) only inside his domain, creating
and deleting accounts with C{CanCreateAccounts}, aliases with
C{CanCreateAliases}, and changing only the settings his rights cover (the
others are silently kept, as CommuniGate does); any user may read his own
settings and verify his own password, and set his own rules when
C{RulesAllowed}/C{SignalRulesAllowed} allow.
"""

from cgpro.core import names
from cgpro.core.dataformat import parseDuration
from cgpro.core.commands import (
    canAdminDomain,
    checkRules,
    command,
    isServerAdmin,
    requireDomainAdmin,
    requireSelfOrReader,
)
from cgpro.core.errors import AccessDenied, CLIError

#: Settings a Domain Administrator changes only with the named right.
RESTRICTED_SETTINGS = {
    "PSTN": "PSTNSettings",
    "MaxAccountSize": "StorageLimits",
    "MaxMailboxes": "StorageLimits",
    "MaxWebSize": "StorageLimits",
    "MaxFileSize": "StorageLimits",
    "MaxWebFiles": "FilesLimits",
    "CallsLimit": "CallLimits",
    "CallInpFlow": "CallInpLimits",
    "CallOutFlow": "CallOutLimits",
    "AccessModes": "BasicSettings",
    "ServiceClass": "BasicSettings",
    "PasswordEncryption": "BasicSettings",
}


def _account(session, args, what="account name"):
    """
    Read an account argument.

    @return: C{(domain, name)} canonical names.
    """
    domain, name = session.directory.account(args.string(what), session.domain)
    return domain.name, name


def _full(domain, name):
    return "%s@%s" % (name, domain)


def _allowedSettings(session, domain, update):
    """
    Drop the keys a Domain Administrator may not change.
    """
    if isServerAdmin(session):
        return update
    kept = {}
    for key, value in update.items():
        needed = None
        for prefix, right in RESTRICTED_SETTINGS.items():
            if key == prefix or (prefix == "PSTN" and key.startswith("PSTN")):
                needed = right
        if needed is None or needed in session.rights:
            kept[key] = value
    return kept


@command("LISTACCOUNTS")
def listAccounts(session, args):
    """LISTACCOUNTS [domain]: dictionary of account names to types."""
    name = args.optionalString()
    args.end()
    domain = session.directory.domain(name, default=session.domain).name
    requireSelfOrReader(session, domain, None)
    return session.directory.listAccounts(domain)


@command("CREATEACCOUNT")
def createAccount(session, args):
    """CREATEACCOUNT name [type] [EXTERNAL] [settings]."""
    address = args.string("account name")
    name, domainName = names.splitAddress(address, session.domain)
    domain = session.directory.domain(domainName).name
    requireDomainAdmin(session, domain, "CanCreateAccounts")
    accountType = args.optionalString(unlessKeyword=("EXTERNAL",))
    args.optionalKeyword("EXTERNAL")
    settings = args.dict("account settings") if not args.atEnd() else None
    args.end()
    if settings is not None:
        settings = _allowedSettings(session, domain, settings)
    return session.directory.createAccount(_full(domain, name), accountType, settings)


@command("RENAMEACCOUNT")
def renameAccount(session, args):
    """RENAMEACCOUNT old INTO new."""
    domain, name = _account(session, args)
    args.keyword("INTO")
    new = args.string("new account name")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateAccounts")
    return session.directory.renameAccount(_full(domain, name), new)


@command("DELETEACCOUNT")
def deleteAccount(session, args):
    """DELETEACCOUNT name."""
    domain, name = _account(session, args)
    args.end()
    requireDomainAdmin(session, domain, "CanCreateAccounts")
    if _full(domain, name) == session.user:
        raise CLIError("you cannot delete your own account")
    return session.directory.deleteAccount(_full(domain, name))


@command("GETACCOUNTSETTINGS", aliases=("GETACCOUNT",))
def getAccountSettings(session, args):
    """GETACCOUNTSETTINGS name: the explicit settings."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return session.directory.getAccountSettings(_full(domain, name))


@command("GETACCOUNTEFFECTIVESETTINGS")
def getAccountEffectiveSettings(session, args):
    """GETACCOUNTEFFECTIVESETTINGS name: settings including defaults."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return session.directory.effectiveAccountSettings(_full(domain, name))


def _setSettings(update):
    def handler(session, args):
        domain, name = _account(session, args)
        value = args.dict("account settings")
        args.end()
        requireDomainAdmin(session, domain)
        value = _allowedSettings(session, domain, value)
        return session.directory.setAccountSettings(_full(domain, name), value, update=update)

    return handler


command("UPDATEACCOUNTSETTINGS", aliases=("UPDATEACCOUNT",))(_setSettings(True))
command("SETACCOUNTSETTINGS", aliases=("SETACCOUNT",))(_setSettings(False))


@command("SETACCOUNTTYPE")
def setAccountType(session, args):
    """SETACCOUNTTYPE name type."""
    domain, name = _account(session, args)
    args.string("account type")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateAccounts")


@command("GETACCOUNTLOCATION")
def getAccountLocation(session, args):
    """GETACCOUNTLOCATION name: the account's storage folder."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return "Domains/%s/Accounts/%s.macnt" % (domain, name)


@command("SETACCOUNTPASSWORD")
def setAccountPassword(session, args):
    """SETACCOUNTPASSWORD name PASSWORD new [CHECK] (older: TO new)."""
    domain, name = _account(session, args)
    args.keyword("PASSWORD", "TO")
    password = args.string("password")
    check = args.optionalKeyword("CHECK")
    args.end()
    if _full(domain, name) != session.user:
        requireDomainAdmin(session, domain)
    if check:
        _checkNewPassword(password)
    return session.directory.setPassword(_full(domain, name), password)


def _checkNewPassword(password):
    """
    The restrictions applied when a user changes his own password.
    """
    if len(password) < 4:
        raise CLIError("the password is too short")
    if len(password) > 256:
        raise CLIError("the password is too long")


@command("VERIFYACCOUNTPASSWORD")
def verifyAccountPassword(session, args):
    """VERIFYACCOUNTPASSWORD name PASSWORD password."""
    domain, name = _account(session, args)
    args.keyword("PASSWORD", "TO")
    password = args.string("password")
    args.end()
    if _full(domain, name) != session.user:
        requireDomainAdmin(session, domain)
    d = session.directory.checkPassword(_full(domain, name), password)

    def checked(result):
        if result is None:
            raise CLIError("password does not match")

    return d.addCallback(checked)


@command("NEWPASS")
def newPass(session, args):
    """NEWPASS password: change one's own password (if PWDAllowed)."""
    password = args.string("password")
    args.end()
    effective = session.directory.effectiveAccountSettings(session.user)
    if str(effective.get("PWDAllowed", "YES")).upper() != "YES":
        raise AccessDenied("password modification is not allowed")
    _checkNewPassword(password)
    d = session.directory.setPassword(session.user, password)
    return d.addCallback(lambda _: None)


# -- aliases, telnums, rights, info -----------------------------------------------------------

@command("GETACCOUNTALIASES")
def getAccountAliases(session, args):
    """GETACCOUNTALIASES name: array of alias names."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return session.directory.getAccountAliases(_full(domain, name))


@command("SETACCOUNTALIASES")
def setAccountAliases(session, args):
    """SETACCOUNTALIASES name (aliases)."""
    domain, name = _account(session, args)
    aliases = args.array("aliases")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateAliases")
    return session.directory.setAccountAliases(_full(domain, name), aliases)


@command("GETACCOUNTTELNUMS")
def getAccountTelnums(session, args):
    """GETACCOUNTTELNUMS name: array of telephone numbers."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return session.directory.getAccountTelnums(_full(domain, name))


@command("SETACCOUNTTELNUMS")
def setAccountTelnums(session, args):
    """SETACCOUNTTELNUMS name (numbers)."""
    domain, name = _account(session, args)
    numbers = args.array("telnums")
    args.end()
    requireDomainAdmin(session, domain, "CanCreateAliases")
    return session.directory.setAccountTelnums(_full(domain, name), numbers)


@command("GETACCOUNTRIGHTS")
def getAccountRights(session, args):
    """GETACCOUNTRIGHTS name: array of access rights."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return session.directory.getAccountPart(_full(domain, name), "Rights")


@command("SETACCOUNTRIGHTS")
def setAccountRights(session, args):
    """SETACCOUNTRIGHTS name (rights)."""
    domain, name = _account(session, args)
    rights = args.array("rights")
    args.end()
    requireDomainAdmin(session, domain)
    if not isServerAdmin(session):
        # a Domain Administrator grants only rights he holds himself
        if not set(rights) <= session.rights or "Master" in rights:
            raise AccessDenied()
    if _full(domain, name) == session.user and "Master" in session.rights and "Master" not in rights:
        raise CLIError("you cannot remove your own Master right")
    return session.directory.setAccountRights(_full(domain, name), rights)


@command("GETACCOUNTINFO")
def getAccountInfo(session, args):
    """GETACCOUNTINFO name [KEY name | (names)]."""
    domain, name = _account(session, args)
    key = None
    keys = None
    if args.optionalKeyword("KEY"):
        key = args.string("info key")
    elif not args.atEnd():
        keys = args.array("info keys")
    args.end()
    requireSelfOrReader(session, domain, name)
    info = session.directory.accountInfo(_full(domain, name))
    if key is not None:
        return info.get(key)
    if keys is not None:
        return {k: info[k] for k in keys if k in info}
    return info


# -- rules and RSIP records ---------------------------------------------------------------

def _rulesAllowed(session, domain, name, settingName):
    if canAdminDomain(session, domain):
        return
    if session.user != _full(domain, name):
        raise AccessDenied()
    allowed = session.directory.effectiveAccountSettings(session.user).get(settingName, "Any")
    if str(allowed).lower() in ("no", "none"):
        raise AccessDenied("rules modification is not allowed")


def _ruleCommands(part, settingName, getName, setName, updateName, getAliases=(), setAliases=()):
    def get(session, args):
        domain, name = _account(session, args)
        args.end()
        requireSelfOrReader(session, domain, name)
        return session.directory.getAccountPart(_full(domain, name), part)

    def set_(session, args):
        domain, name = _account(session, args)
        rules = args.array("rules")
        args.end()
        _rulesAllowed(session, domain, name, settingName)
        return session.directory.setAccountPart(_full(domain, name), part, checkRules(rules))

    def update(session, args):
        domain, name = _account(session, args)
        if args.optionalKeyword("DELETE"):
            ruleName = args.string("rule name")
            rule = None
        else:
            rule = checkRules([args.array("rule")])[0]
            ruleName = rule[1]
        args.end()
        _rulesAllowed(session, domain, name, settingName)
        rules = session.directory.getAccountPart(_full(domain, name), part)
        kept = [r for r in rules if r[1] != ruleName]
        if rule is not None:
            at = next((i for i, r in enumerate(rules) if r[1] == ruleName), len(kept))
            kept.insert(at, rule)
        return session.directory.setAccountPart(_full(domain, name), part, kept)

    command(getName, aliases=getAliases)(get)
    command(setName, aliases=setAliases)(set_)
    command(updateName)(update)


_ruleCommands(
    "MailRules", "RulesAllowed", "GETACCOUNTMAILRULES", "SETACCOUNTMAILRULES",
    "UPDATEACCOUNTMAILRULE", getAliases=("GETACCOUNTRULES",), setAliases=("SETACCOUNTRULES",),
)
_ruleCommands(
    "SignalRules", "SignalRulesAllowed", "GETACCOUNTSIGNALRULES", "SETACCOUNTSIGNALRULES",
    "UPDATEACCOUNTSIGNALRULE",
)

RSIP_KEYS = frozenset(["domain", "authName", "fromName", "password", "period", "targetName"])


@command("GETACCOUNTRSIPS")
def getAccountRSIPs(session, args):
    """GETACCOUNTRSIPS name: dictionary of RSIP records."""
    domain, name = _account(session, args)
    args.end()
    requireSelfOrReader(session, domain, name)
    return session.directory.getAccountPart(_full(domain, name), "RSIPs")


@command("SETACCOUNTRSIPS")
def setAccountRSIPs(session, args):
    """SETACCOUNTRSIPS name {record={...};}."""
    domain, name = _account(session, args)
    records = args.dict("RSIP records")
    args.end()
    if not canAdminDomain(session, domain, "RSIPSettings"):
        effective = session.directory.effectiveAccountSettings(_full(domain, name))
        if session.user != _full(domain, name) or effective.get("RSIPAllowed") != "YES":
            raise AccessDenied()
    kept = {}
    for key, record in records.items():
        if not isinstance(record, dict):
            raise CLIError("RSIP record %s must be a dictionary" % (key,))
        unknown = set(record) - RSIP_KEYS
        if unknown:
            raise CLIError("unknown RSIP key: %s" % (sorted(unknown)[0],))
        if str(record.get("period", "")).lower() == "never":
            continue  # "Register Every: Never" removes the record
        try:
            parseDuration(str(record.get("period", "")))
        except ValueError:
            raise CLIError("RSIP record %s: bad period %r (e.g. 30m, 60s, 1h, Never)"
                           % (key, record.get("period", "")))
        kept[key] = record
    return session.directory.setAccountPart(_full(domain, name), "RSIPs", kept)

