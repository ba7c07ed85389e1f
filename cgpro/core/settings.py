# -*- test-case-name: tests.core.test_settings -*-
"""
Built-in defaults and the effective-settings chain.

Every setting either has an explicit value or inherits one.  For accounts
the chain is, first match wins::

    account explicit -> service class -> domain account defaults
      -> server account defaults -> built-in

and for domains::

    domain explicit -> server domain defaults -> built-in

(objects.md section 3).  The built-in values here are what an administrator
sees in C{GETACCOUNTEFFECTIVESETTINGS} on a fresh server; every module reads
its per-account and per-domain knobs through this chain and never keeps a
default of its own, so one C{UPDATESERVERACCOUNTDEFAULTS} changes behaviour
everywhere.

C{UPDATE} commands merge and treat the string C{default} as "remove the
explicit value"; C{SET} commands replace the whole dictionary.
"""

import copy

DEFAULT_MARK = "default"

BUILTIN_ACCOUNT = {
    "AccessModes": "All",
    "AddMailTrailer": "NO",
    "CallLogs": "NO",
    "CallsLimit": "-1",
    "DefaultMailboxType": "MultiMailbox",
    "DeleteMessagesAfter": "0",
    "FailedLoginFlow": ["10", "1m"],
    "LogLogin": "NO",
    "MaxAccountSize": "100M",
    "MaxMailboxes": "-1",
    "MaxMessageSize": "unlimited",
    "MaxSignalContacts": "10",
    "PasswordEncryption": "encrypted",
    "PWDAllowed": "YES",
    "QuotaAlert": "80",
    "QuotaNotice": "90",
    "QuotaSuspend": "100",
    "RealName": "",
    "RequireAPOP": "NO",
    "RPOPAllowed": "NO",
    "RSIPAllowed": "NO",
    "RulesAllowed": "Any",
    "SignalRulesAllowed": "Any",
    "UseAppPassword": "YES",
    "VacationReplyPeriod": "7d",
    "PSTNFromName": "$",
}

BUILTIN_DOMAIN = {
    "AccessToUnknown": "Rejected",
    "AccountsLimit": "-1",
    "DomainAccessModes": "All",
    "ForceSMTPAUTH": "NO",
    "ListsLimit": "-1",
    "MailToUnknown": "Rejected",
    "SignalToUnknown": "Rejected",
}

BUILTIN_SERVER = {
    "CLIIdleTimeout": "5m",
    "CLIMaxLineSize": "16M",
    "LoginFailureLimit": "10",
    "LoginFailurePeriod": "1m",
    "LoginCacheTime": "15m",
    "PasswordHashRounds": "100000",
}


def applyUpdate(stored, update):
    """
    Merge an C{UPDATE...} dictionary into stored explicit settings.

    @param stored: the explicit settings (not modified).
    @param update: keys to change; a value equal to C{"default"} (any
        case) removes the key so that the inherited value applies again.
    @return: a new C{dict}.
    """
    result = dict(stored)
    for key, value in update.items():
        if isinstance(value, str) and value.lower() == DEFAULT_MARK:
            result.pop(key, None)
        else:
            result[key] = copy.deepcopy(value)
    return result


def effectiveDomain(explicit, serverDomainDefaults):
    """
    @return: domain settings resolved through the chain.
    """
    result = dict(BUILTIN_DOMAIN)
    result.update(serverDomainDefaults)
    result.update(explicit)
    return result


def effectiveAccount(explicit, domainAccountDefaults, serverAccountDefaults):
    """
    Resolve account settings.  The service class is looked up by the
    C{ServiceClass} name in the C{ServiceClasses} dictionary of the domain
    account defaults, then of the server account defaults; it sits between
    the account's explicit values and the defaults.

    @return: the effective settings C{dict}.
    """
    result = dict(BUILTIN_ACCOUNT)
    result.update(serverAccountDefaults)
    result.update(domainAccountDefaults)
    className = explicit.get("ServiceClass", result.get("ServiceClass"))
    if isinstance(className, str) and className:
        for source in (domainAccountDefaults, serverAccountDefaults):
            classes = source.get("ServiceClasses")
            if isinstance(classes, dict) and isinstance(classes.get(className), dict):
                result.update(classes[className])
                break
    result.update(explicit)
    result.pop("ServiceClasses", None)
    return result


def effectiveServer(explicit):
    """
    @return: server settings resolved over the built-in ones.
    """
    result = dict(BUILTIN_SERVER)
    result.update(explicit)
    return result
