# -*- test-case-name: tests.directory.test_lists -*-
"""
Tests for L{cgpro.directory.lists} (mailing lists in the directory) and
L{cgpro.directory.listcommands} (their CLI commands and access rights).
"""

import os

from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase

import cgpro.cli.factory  # noqa: F401  (registers the commands)
from cgpro.core import dataformat
from cgpro.core.commands import TABLE, Arguments
from cgpro.core.errors import AccessDenied, CLIError, NameTaken, SyntaxCLIError, UnknownObject
from cgpro.directory.lists import LIST_DEFAULTS
from tests.support.directory import makeDirectory, reopen


class ListStorageTests(SynchronousTestCase):
    """
    Lists and subscribers in the directory, and after a reload.
    """

    def setUp(self):
        self.directory = makeDirectory(self)
        self.successResultOf(self.directory.createAccount("owner@main.dom"))
        self.successResultOf(self.directory.createList("news", "owner"))

    def subscribersFile(self, name="news", domain="main.dom"):
        return os.path.join(self.directory.storage.base, "Domains", domain, "Lists",
                            name + ".subscribers")

    def test_createList(self):
        """A new list has its owner, the defaults and an empty subscriber file."""
        d = self.directory
        self.assertEqual(d.listLists(), ["news"])
        settings = d.getList("news")
        self.assertEqual(settings["Owner"], "owner")
        for key, value in LIST_DEFAULTS.items():
            self.assertEqual(settings[key], value)
        self.assertEqual(d.getDomainPart("main.dom", "Lists"), {"news": {"Owner": "owner"}})
        with open(self.subscribersFile(), "rb") as f:
            self.assertEqual(dataformat.loads(f.read().decode()), {})

    def test_findObject(self):
        """findObject answers "list" for the list and for its -bounces address."""
        d = self.directory
        self.assertEqual(d.findObject("news@main.dom"),
                         ("list", "news@main.dom", {"Owner": "owner"}))
        self.assertEqual(d.findObject("news-bounces@main.dom")[:2],
                         ("list", "news-bounces@main.dom"))
        self.assertEqual(d.resolveListAddress("NEWS@main.dom"), ("post", "news@main.dom"))
        self.assertEqual(d.resolveListAddress("news-bounces@main.dom"),
                         ("bounces", "news@main.dom"))
        self.assertIsNone(d.resolveListAddress("owner@main.dom"))
        self.assertIsNone(d.resolveListAddress("news@far.dom"))

    def test_namespace(self):
        """A list name, and its -bounces name, are taken for every other object."""
        d = self.directory
        self.assertRaises(NameTaken, d.createAccount, "news")
        self.assertRaises(NameTaken, d.createGroup, "news-bounces")
        self.assertRaises(NameTaken, d.createList, "owner", "owner")
        self.successResultOf(d.createForwarder("fwd-bounces", "x@far.dom"))
        self.assertRaises(NameTaken, d.createList, "fwd", "owner")
        self.assertRaises(NameTaken, d.createList, "news", "owner")

    def test_ownerMustExist(self):
        """The owner is an account (or alias) of the list's domain."""
        d = self.directory
        self.assertRaises(UnknownObject, d.createList, "a", "nobody")
        self.successResultOf(d.createDomain("other.dom"))
        self.successResultOf(d.createAccount("carol@other.dom"))
        self.assertRaises(CLIError, d.createList, "a@main.dom", "carol@other.dom")
        self.successResultOf(d.createList("b", "carol@other.dom"))
        self.assertEqual(d.listLists("other.dom"), ["b"])
        self.successResultOf(d.setAccountAliases("owner", ["boss"]))
        self.successResultOf(d.createList("c", "boss"))
        self.assertEqual(d.getList("c")["Owner"], "owner")

    def test_subscribeAndReload(self):
        """Subscribers, their modes and counters survive a restart."""
        d = self.directory
        self.successResultOf(d.subscribe("news", '"Bob B" <Bob@Far.dom>', "subscribe"))
        self.successResultOf(d.subscribe("news", "carol@far.dom", "digest"))
        self.successResultOf(d.subscribe("news", "eve@far.dom", "banned"))
        self.successResultOf(d.setPostingMode("news", "carol@far.dom", 2))
        again = reopen(self, d)
        self.assertEqual(again.listSubscribers("news"),
                         ["bob@far.dom", "carol@far.dom", "eve@far.dom"])
        bob = again.getSubscriberInfo("news", "BOB@far.dom")
        self.assertEqual(bob["Mode"], "feed")
        self.assertEqual(bob["Bounces"], 0)
        self.assertEqual(bob["RealName"], "Bob B")
        self.assertEqual(bob["Subscribed"], d.now())
        self.assertEqual(again.getSubscriberInfo("news", "carol@far.dom")["Posting"], 2)
        self.assertEqual(again.getDomainLists(), {"news": 2})
        self.assertEqual(again.getSubscriberInfo("news", "nobody@far.dom"), {})

    def test_unsubscribe(self):
        """unsubscribe removes the address; an unknown one is refused."""
        d = self.directory
        self.successResultOf(d.subscribe("news", "bob@far.dom", "feed"))
        self.successResultOf(d.subscribe("news", "bob@far.dom", "unsubscribe"))
        self.assertEqual(d.listSubscribers("news"), [])
        self.assertRaises(UnknownObject, d.subscribe, "news", "bob@far.dom", "unsubscribe")
        self.assertRaises(CLIError, d.subscribe, "news", "not an address", "feed")
        self.assertRaises(CLIError, d.subscribe, "news", "bob@far.dom", "sideways")

    def test_filterAndLimit(self):
        """LISTSUBSCRIBERS filters by substring and cuts at the limit."""
        d = self.directory
        for address in ("a@x.dom", "b@x.dom", "c@y.dom"):
            self.successResultOf(d.subscribe("news", address, "feed"))
        self.assertEqual(d.listSubscribers("news", filter="X.DOM"), ["a@x.dom", "b@x.dom"])
        self.assertEqual(d.listSubscribers("news", limit=1), ["a@x.dom"])

    def test_updateList(self):
        """UPDATELIST merges, checks values, and "default" removes a key."""
        d = self.directory
        self.successResultOf(d.updateList("news", {
            "PostingMode": "Moderated", "BounceLimit": "3", "Moderators": ["Mod", "x@far.dom"],
            "SubjectPrefix": "[news]", "RealName": "News"}))
        settings = d.getList("news")
        self.assertEqual(settings["PostingMode"], "moderated")
        self.assertEqual(settings["BounceLimit"], 3)
        self.assertEqual(settings["Moderators"], ["mod", "x@far.dom"])
        self.successResultOf(d.updateList("news", {"BounceLimit": "default"}))
        self.assertEqual(reopen(self, d).getList("news")["BounceLimit"], 5)
        for bad in ({"PostingMode": "everybody"}, {"BounceLimit": "0"}, {"ReplyTo": "x"},
                    {"Moderators": "mod"}, {"Owner": "nobody"}, {"Owner": "default"}):
            self.assertRaises(CLIError, d.updateList, "news", bad)
        self.assertEqual(d.getList("news")["PostingMode"], "moderated")

    def test_renameList(self):
        """A renamed list keeps its subscribers; the old file goes."""
        d = self.directory
        self.successResultOf(d.subscribe("news", "bob@far.dom", "feed"))
        self.successResultOf(d.renameList("news", "tidings"))
        self.assertFalse(os.path.exists(self.subscribersFile()))
        again = reopen(self, d)
        self.assertEqual(again.listLists(), ["tidings"])
        self.assertEqual(again.listSubscribers("tidings"), ["bob@far.dom"])
        self.assertRaises(UnknownObject, again.getList, "news")
        self.assertIsNone(again.findObject("news-bounces@main.dom"))
        self.assertRaises(NameTaken, d.renameList, "tidings", "owner")

    def test_deleteList(self):
        """A deleted list frees its names; a new list of that name starts empty."""
        d = self.directory
        self.successResultOf(d.subscribe("news", "bob@far.dom", "feed"))
        self.successResultOf(d.deleteList("news"))
        self.assertFalse(os.path.exists(self.subscribersFile()))
        self.assertEqual(reopen(self, d).listLists(), [])
        self.successResultOf(d.createList("news", "owner"))
        self.assertEqual(d.listSubscribers("news"), [])

    def test_domainRename(self):
        """Lists and their subscribers move with a renamed domain."""
        d = self.directory
        self.successResultOf(d.createDomain("old.dom"))
        self.successResultOf(d.createAccount("o@old.dom"))
        self.successResultOf(d.createList("l@old.dom", "o@old.dom"))
        self.successResultOf(d.subscribe("l@old.dom", "bob@far.dom", "feed"))
        self.successResultOf(d.renameDomain("old.dom", "new.dom"))
        self.assertEqual(d.listSubscribers("l@new.dom"), ["bob@far.dom"])
        self.assertEqual(reopen(self, d).listSubscribers("l@new.dom"), ["bob@far.dom"])

    def test_bounces(self):
        """Fatal bounces count up to BounceLimit and unsubscribe; delays are only noted."""
        d = self.directory
        self.successResultOf(d.updateList("news", {"BounceLimit": 2}))
        self.successResultOf(d.subscribe("news", "bob@far.dom", "feed"))
        self.successResultOf(d.subscribe("news", "eve@far.dom", "banned"))
        self.assertEqual(self.successResultOf(d.processBounce("news", "bob@far.dom", False)), [])
        info = d.getSubscriberInfo("news", "bob@far.dom")
        self.assertEqual((info["Bounces"], info["LastBounce"]), (0, d.now()))
        self.assertEqual(self.successResultOf(
            d.recordBounces("news@main.dom", ["bob@far.dom", "eve@far.dom", "x@y.dom"])), [])
        self.assertEqual(d.getSubscriberInfo("news", "bob@far.dom")["Bounces"], 1)
        self.assertEqual(self.successResultOf(d.processBounce("news", "bob@far.dom")),
                         ["bob@far.dom"])
        self.assertEqual(reopen(self, d).listSubscribers("news"), ["eve@far.dom"])
        self.assertRaises(UnknownObject, d.processBounce, "news", "bob@far.dom")

    def test_resubscribeClearsBounces(self):
        """Subscribing again starts the bounce count afresh."""
        d = self.directory
        self.successResultOf(d.subscribe("news", "bob@far.dom", "feed"))
        self.successResultOf(d.processBounce("news", "bob@far.dom"))
        self.successResultOf(d.subscribe("news", "bob@far.dom", "digest"))
        info = d.getSubscriberInfo("news", "bob@far.dom")
        self.assertEqual((info["Mode"], info["Bounces"]), ("digest", 0))
        self.assertNotIn("LastBounce", info)

    def test_postingModes(self):
        """SETPOSTINGMODE keywords and numbers; 0 clears; held posts count down."""
        d = self.directory
        self.successResultOf(d.subscribe("news", "bob@far.dom", "feed"))
        self.successResultOf(d.setPostingMode("news", "bob@far.dom", "PROHIBITED"))
        self.assertEqual(d.getSubscriberInfo("news", "bob@far.dom")["Posting"], "prohibited")
        self.successResultOf(d.setPostingMode("news", "bob@far.dom", 2))
        self.successResultOf(d.notePostHeld("news@main.dom", "bob@far.dom"))
        self.assertEqual(d.getSubscriberInfo("news", "bob@far.dom")["Posting"], 1)
        self.successResultOf(d.notePostHeld("news@main.dom", "bob@far.dom"))
        self.assertNotIn("Posting", d.getSubscriberInfo("news", "bob@far.dom"))
        self.successResultOf(d.setPostingMode("news", "bob@far.dom", "special"))
        self.successResultOf(d.setPostingMode("news", "bob@far.dom", 0))
        self.assertNotIn("Posting", d.getSubscriberInfo("news", "bob@far.dom"))
        self.assertRaises(UnknownObject, d.setPostingMode, "news", "x@far.dom", "SPECIAL")
        self.assertRaises(CLIError, d.setPostingMode, "news", "bob@far.dom", "LOUD")

    def test_writeFailureRollsBack(self):
        """A subscriber write that fails leaves the subscribers as they were."""
        d = self.directory
        writer = d.storage.writer
        self.patch(writer, "write", lambda *a, **kw: fail(OSError("disk full")))
        failure = self.failureResultOf(d.subscribe("news", "bob@far.dom", "feed"), CLIError)
        self.assertIn("not applied", str(failure.value))
        self.assertEqual(d.listSubscribers("news"), [])
        self.flushLoggedErrors(OSError)

    def test_damagedFileRefused(self):
        """A damaged subscriber file is reported, never overwritten with nothing."""
        d = self.directory
        with open(self.subscribersFile(), "wb") as f:
            f.write(b"{ broken")
        again = reopen(self, d)
        self.assertRaises(CLIError, again.listSubscribers, "news")
        self.assertRaises(CLIError, again.subscribe, "news", "bob@far.dom", "feed")
        with open(self.subscribersFile(), "rb") as f:
            self.assertEqual(f.read(), b"{ broken")

    def test_canCreateListsRight(self):
        """CanCreateLists can be granted with the other rights, checked as they are."""
        d = self.directory
        self.successResultOf(d.setAccountRights("owner", ["Domain", "CanCreateLists"]))
        self.assertEqual(d.rightsOf("owner"), {"Domain", "CanCreateLists"})
        self.assertRaises(CLIError, d.setAccountRights, "owner", ["CanCreateLists", "Bogus"])
        self.successResultOf(d.createDomain("d.dom"))
        self.successResultOf(d.createAccount("da@d.dom"))
        self.assertRaises(CLIError, d.setAccountRights, "da@d.dom", ["CanCreateLists", "Master"])


class FakeSession:
    """
    What a command runs with, as the CLI builds it.
    """

    def __init__(self, directory, user):
        self.directory = directory
        self.server = None
        self.user = user
        self.domain = user.partition("@")[2]

    @property
    def rights(self):
        return self.directory.rightsOf(self.user)


class ListCommandTests(SynchronousTestCase):
    """
    The list commands of cli.md 6.8 and who may use them.
    """

    def setUp(self):
        self.directory = d = makeDirectory(self)
        self.successResultOf(d.createDomain("d.dom"))
        for address, rights in (("da@d.dom", ["Domain", "CanCreateLists"]),
                                ("plain@d.dom", ["Domain"]),
                                ("owner@d.dom", []),
                                ("user@d.dom", [])):
            self.successResultOf(d.createAccount(address))
            if rights:
                self.successResultOf(d.setAccountRights(address, rights))
        self.admin = FakeSession(d, "postmaster@main.dom")

    def call(self, line, user=None):
        name, _, rest = line.partition(" ")
        session = self.admin if user is None else FakeSession(self.directory, user)
        result = TABLE.lookup(name).handler(session, Arguments(rest))
        if hasattr(result, "addCallback"):
            return self.successResultOf(result)
        return result

    def test_lifecycle(self):
        """Create, list, get, update, rename and delete a list as the server administrator."""
        self.assertIsNone(self.call("CREATELIST l@d.dom FOR owner@d.dom"))
        self.assertEqual(self.call("LISTLISTS d.dom"), ["l"])
        self.assertEqual(self.call("GETDOMAINLISTS d.dom"), {"l": 0})
        self.call('UPDATELIST l@d.dom {PostingMode=subscribers;SubjectPrefix="[l]";}')
        self.assertEqual(self.call("GETLIST l@d.dom")["SubjectPrefix"], "[l]")
        self.call("RENAMELIST l@d.dom INTO m")
        self.assertEqual(self.call("LISTLISTS d.dom"), ["m"])
        self.call("DELETELIST m@d.dom")
        self.assertEqual(self.call("LISTLISTS d.dom"), [])

    def test_createInOwnersDomain(self):
        """A bare list name is created in the owner's domain."""
        self.call("CREATELIST team FOR owner@d.dom")
        self.assertEqual(self.call("LISTLISTS d.dom"), ["team"])
        self.assertEqual(self.call("LISTLISTS"), [])

    def test_subscriberCommands(self):
        """LIST, LISTSUBSCRIBERS, GETSUBSCRIBERINFO, SETPOSTINGMODE, PROCESSBOUNCE."""
        self.call("CREATELIST l@d.dom FOR owner@d.dom")
        self.call("LIST l@d.dom subscribe silently confirm a@far.dom")
        self.call("LIST l@d.dom FEED b@far.dom")
        self.call("LIST l@d.dom null c@x.dom")
        self.assertEqual(self.call("LISTSUBSCRIBERS l@d.dom"),
                         ["a@far.dom", "b@far.dom", "c@x.dom"])
        self.assertEqual(self.call("LISTSUBSCRIBERS l@d.dom FILTER far 1"), ["a@far.dom"])
        self.assertEqual(self.call("LISTSUBSCRIBERS l@d.dom #2"), ["a@far.dom", "b@far.dom"])
        self.assertEqual(self.call("GETSUBSCRIBERINFO l@d.dom NAME c@x.dom")["Mode"], "null")
        self.call("SETPOSTINGMODE l@d.dom FOR a@far.dom MODERATEALL")
        self.call("SETPOSTINGMODE l@d.dom FOR b@far.dom 3")
        self.assertEqual(self.call("GETSUBSCRIBERINFO l@d.dom NAME a@far.dom")["Posting"],
                         "moderateAll")
        self.assertEqual(self.call("GETSUBSCRIBERINFO l@d.dom NAME b@far.dom")["Posting"], 3)
        self.assertIsNone(self.call("PROCESSBOUNCE l@d.dom FATAL FOR a@far.dom"))
        self.call("PROCESSBOUNCE l@d.dom FOR a@far.dom")
        self.assertEqual(self.call("GETSUBSCRIBERINFO l@d.dom NAME a@far.dom")["Bounces"], 1)
        self.call("LIST l@d.dom unsubscribe a@far.dom")
        self.assertEqual(self.call("GETDOMAINLISTS d.dom"), {"l": 2})

    def test_syntax(self):
        """Malformed list commands are syntax errors."""
        self.call("CREATELIST l@d.dom FOR owner@d.dom")
        for line in ("CREATELIST l2@d.dom owner@d.dom", "LIST l@d.dom join a@far.dom",
                     "LIST l@d.dom subscribe", "SETPOSTINGMODE l@d.dom FOR a@far.dom LOUD",
                     "LISTSUBSCRIBERS l@d.dom many", "GETSUBSCRIBERINFO l@d.dom a@far.dom",
                     "PROCESSBOUNCE l@d.dom a@far.dom"):
            self.assertRaises(SyntaxCLIError, self.call, line)

    def test_domainAdministrator(self):
        """CanCreateLists lets a Domain Administrator manage his domain's lists only."""
        self.call("CREATELIST l FOR owner", user="da@d.dom")
        self.call("LIST l subscribe a@far.dom", user="da@d.dom")
        self.call("UPDATELIST l {Owner=user;}", user="da@d.dom")
        self.assertEqual(self.call("GETLIST l@d.dom")["Owner"], "user")
        self.call("RENAMELIST l INTO m", user="da@d.dom")
        self.call("DELETELIST m", user="da@d.dom")
        self.call("CREATELIST x@main.dom FOR postmaster@main.dom")
        for line in ("CREATELIST y@main.dom FOR postmaster@main.dom", "GETLIST x@main.dom",
                     "LISTLISTS main.dom", "LIST x@main.dom subscribe a@far.dom"):
            self.assertRaises(AccessDenied, self.call, line, "da@d.dom")

    def test_domainAdministratorWithoutRight(self):
        """Without CanCreateLists a Domain Administrator only reads lists."""
        self.call("CREATELIST l@d.dom FOR owner@d.dom")
        self.assertEqual(self.call("LISTLISTS", user="plain@d.dom"), ["l"])
        self.assertEqual(self.call("GETLIST l", user="plain@d.dom")["Owner"], "owner")
        self.assertEqual(self.call("LISTSUBSCRIBERS l", user="plain@d.dom"), [])
        for line in ("CREATELIST k FOR owner", "DELETELIST l", "RENAMELIST l INTO k",
                     "UPDATELIST l {PostingMode=moderated;}", "LIST l subscribe a@far.dom",
                     "SETPOSTINGMODE l FOR a@far.dom PROHIBITED"):
            self.assertRaises(AccessDenied, self.call, line, "plain@d.dom")

    def test_owner(self):
        """The owner manages his list's settings and subscribers, but not its owner or name."""
        self.call("CREATELIST l@d.dom FOR owner@d.dom")
        self.call("LIST l subscribe a@far.dom", user="owner@d.dom")
        self.call("SETPOSTINGMODE l FOR a@far.dom PROHIBITED", user="owner@d.dom")
        self.call("PROCESSBOUNCE l FATAL FOR a@far.dom", user="owner@d.dom")
        self.assertEqual(self.call("LISTSUBSCRIBERS l", user="owner@d.dom"), ["a@far.dom"])
        self.assertEqual(self.call("GETSUBSCRIBERINFO l NAME a@far.dom", user="owner@d.dom")
                         ["Bounces"], 1)
        self.call("UPDATELIST l {Owner=user;PostingMode=moderated;}", user="owner@d.dom")
        settings = self.call("GETLIST l", user="owner@d.dom")
        self.assertEqual((settings["Owner"], settings["PostingMode"]), ("owner", "moderated"))
        for line in ("RENAMELIST l INTO k", "DELETELIST l", "CREATELIST k FOR owner",
                     "LISTLISTS"):
            self.assertRaises(AccessDenied, self.call, line, "owner@d.dom")

    def test_plainUser(self):
        """Someone else's list is closed to a plain user; unknown lists say so."""
        self.call("CREATELIST l@d.dom FOR owner@d.dom")
        for line in ("GETLIST l", "LISTSUBSCRIBERS l", "LIST l subscribe user@d.dom",
                     "GETDOMAINLISTS", "PROCESSBOUNCE l FOR a@far.dom"):
            self.assertRaises(AccessDenied, self.call, line, "user@d.dom")
        self.assertRaises(UnknownObject, self.call, "GETLIST nope", "user@d.dom")
