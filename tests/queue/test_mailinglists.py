# -*- test-case-name: tests.queue.test_mailinglists -*-
"""
Tests for L{cgpro.queue.mailinglists}: group expansion, posting policies,
list headers and bounce counting, with a fake queue recording what the
channel submits; then once through a real queue.
"""

import email
from dataclasses import dataclass

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cgpro.core.envelope import DEFERRED, DELIVERED, FAILED, DeliveryJob, Envelope, RecipientResult
from cgpro.core.interfaces import IDeliveryChannel
from cgpro.core.router import Router
from cgpro.queue import dsn
from cgpro.queue.mailinglists import ListChannel, editHeaders, parseReport, xtext
from tests.queue.support import MESSAGE, FakeChannel, makeQueue
from tests.support.directory import makeDirectory

POST = (b"From: Bob <bob@far.dom>\r\n"
        b"To: news@main.dom\r\n"
        b"Subject: Hello\r\n"
        b"List-Id: <other.elsewhere.dom>\r\n"
        b"Precedence: bulk\r\n"
        b"Message-ID: <p1@far.dom>\r\n"
        b"\r\n"
        b"Body line\r\n")


@dataclass
class MemoryJob(DeliveryJob):
    """
    A job whose message is in memory.
    """

    data: bytes = b""

    def readMessage(self):
        return self.data


class FakeQueue:
    """
    Records submitted messages; fails them when C{error} is set.

    @ivar submitted: C{(envelope, data)} pairs.
    """

    def __init__(self):
        self.submitted = []
        self.error = None

    def submit(self, envelope, data):
        if self.error is not None:
            return fail(self.error)
        self.submitted.append((envelope, data))
        return succeed(str(len(self.submitted)))


class ChannelTestsMixin:
    """
    A directory with C{main.dom} (accounts owner, mod, alice), a router,
    a fake queue and the channel.
    """

    def setUp(self):
        self.directory = d = makeDirectory(self)
        for name in ("owner", "mod", "alice"):
            self.successResultOf(d.createAccount(name + "@main.dom"))
        self.router = Router(d)
        self.queue = FakeQueue()
        self.clock = Clock()
        self.channel = ListChannel(d, self.queue, clock=self.clock)

    def job(self, address, sender="bob@far.dom", data=POST, authUser=None):
        """
        @return: the job the queue would give the channel for C{address}.
        """
        env = Envelope(sender=sender, authUser=authUser)
        recipient = env.addRecipient(address)
        route = self.router.route(address, "MAIL", trusted=True)
        self.assertEqual(route.module, "LIST")
        return MemoryJob("42", env, route.queue, [(recipient, route)], "", 0, len(data),
                         data=data)

    def deliver(self, address, **kw):
        """
        @return: the one result of delivering a job to C{address}.
        """
        results = self.successResultOf(self.channel.deliver(self.job(address, **kw)))
        self.assertEqual(len(results), 1)
        return results[0]

    def makeList(self, name="news", subscribers=(), **settings):
        d = self.directory
        self.successResultOf(d.createList(name, "owner"))
        if settings:
            self.successResultOf(d.updateList(name, settings))
        for address, mode in subscribers:
            self.successResultOf(d.subscribe(name, address, mode))

    def lastCopy(self):
        envelope, data = self.queue.submitted[-1]
        return envelope, data, email.message_from_bytes(data)


class PostingTests(ChannelTestsMixin, SynchronousTestCase):
    """
    Posts to a list: who gets a copy, and with which envelope.
    """

    def test_interface(self):
        """The channel provides IDeliveryChannel for module LIST."""
        self.assertTrue(verifyObject(IDeliveryChannel, self.channel))
        self.assertEqual(self.channel.name, "LIST")

    def test_routes(self):
        """The Router sends a list and its -bounces address to LIST."""
        self.makeList()
        self.assertEqual(self.router.route("news@main.dom", "MAIL").asTriple(),
                         ("LIST", "news@main.dom", "*"))
        self.assertEqual(self.router.route("news-bounces@main.dom", "MAIL").asTriple(),
                         ("LIST", "news-bounces@main.dom", "*"))

    def test_anyone(self):
        """One copy to the receiving subscribers, from <list>-bounces, NOTIFY=FAILURE, RET=HDRS."""
        self.makeList(subscribers=[("carol@far.dom", "feed"), ("alice", "subscribe"),
                                   ("dan@far.dom", "digest"), ("ed@far.dom", "index"),
                                   ("nil@far.dom", "null"), ("eve@far.dom", "banned")])
        result = self.deliver("news@main.dom")
        self.assertEqual((result.status, result.code), (DELIVERED, 250))
        self.assertIn("4 subscribers", result.text)
        envelope, data, _ = self.lastCopy()
        self.assertEqual(envelope.sender, "news-bounces@main.dom")
        self.assertEqual([r.address for r in envelope.recipients],
                         ["alice@main.dom", "carol@far.dom", "dan@far.dom", "ed@far.dom"])
        self.assertEqual(envelope.recipients[1].notify, ("FAILURE",))
        self.assertEqual(envelope.recipients[1].orcpt, "rfc822;carol@far.dom")
        self.assertEqual((envelope.ret, envelope.trusted), ("HDRS", True))

    def test_noSubscribers(self):
        """A post to a list without subscribers is done, and nothing is queued."""
        self.makeList(subscribers=[("nil@far.dom", "null")])
        result = self.deliver("news@main.dom")
        self.assertEqual(result.status, DELIVERED)
        self.assertIn("no subscribers", result.text)
        self.assertEqual(self.queue.submitted, [])

    def test_queueFailureDefers(self):
        """Copies that cannot be queued leave the post DEFERRED for a retry."""
        self.makeList(subscribers=[("carol@far.dom", "feed")])
        self.queue.error = OSError("disk full")
        result = self.deliver("news@main.dom")
        self.assertEqual((result.status, result.code), (DEFERRED, 451))
        self.flushLoggedErrors(OSError)

    def test_submitGenerated(self):
        """The copies skip the server rules when the queue can (submitGenerated)."""
        self.makeList(subscribers=[("carol@far.dom", "feed")])
        generated = []
        self.queue.submitGenerated = lambda env, data: (generated.append(env), succeed("7"))[1]
        self.assertEqual(self.deliver("news@main.dom").status, DELIVERED)
        self.assertEqual(len(generated), 1)
        self.assertEqual(self.queue.submitted, [])

    def test_unknownTarget(self):
        """A list deleted after routing fails its recipients."""
        self.makeList()
        job = self.job("news@main.dom")
        self.successResultOf(self.directory.deleteList("news"))
        [result] = self.successResultOf(self.channel.deliver(job))
        self.assertEqual((result.status, result.code), (FAILED, 550))


class PolicyTests(ChannelTestsMixin, SynchronousTestCase):
    """
    PostingMode, moderators and the subscribers' own posting modes.
    """

    def assertRefused(self, result, text):
        self.assertEqual((result.status, result.code), (FAILED, 550))
        self.assertTrue(result.text.startswith("5.7.1 "), result.text)
        self.assertIn(text, result.text)

    def assertHeld(self, result):
        self.assertEqual(result.status, DELIVERED)
        self.assertIn("held", result.text)

    def test_subscribersOnly(self):
        """Only subscribers (any mode but banned) post to a subscribers list."""
        self.makeList(subscribers=[("carol@far.dom", "feed"), ("nil@far.dom", "null")],
                      PostingMode="subscribers")
        self.assertRefused(self.deliver("news@main.dom"), "only subscribers may post")
        self.assertEqual(self.queue.submitted, [])
        self.assertEqual(self.deliver("news@main.dom", sender="carol@far.dom").status, DELIVERED)
        self.assertEqual(self.deliver("news@main.dom", sender="nil@far.dom").status, DELIVERED)

    def test_fromHeaderCounts(self):
        """The From address counts as the poster as well as the envelope sender."""
        self.makeList(subscribers=[("bob@far.dom", "feed")], PostingMode="subscribers")
        result = self.deliver("news@main.dom", sender="bounce-123@lists.far.dom")
        self.assertEqual(result.status, DELIVERED)

    def test_authenticatedUserCounts(self):
        """The authenticated account counts as a poster."""
        self.makeList(subscribers=[("alice@main.dom", "feed")], PostingMode="subscribers")
        result = self.deliver("news@main.dom", sender="other@far.dom",
                              authUser="alice@main.dom", data=b"Subject: x\r\n\r\nhi\r\n")
        self.assertEqual(result.status, DELIVERED)

    def test_moderated(self):
        """Moderators and the owner post; others are held for the moderators, unchanged."""
        self.makeList(subscribers=[("carol@far.dom", "feed")], PostingMode="moderated",
                      Moderators=["mod", "x@far.dom"])
        self.assertEqual(self.deliver("news@main.dom", sender="mod@main.dom").status, DELIVERED)
        self.assertEqual(self.deliver("news@main.dom", sender="owner@main.dom").status,
                         DELIVERED)
        self.assertEqual(len(self.queue.submitted), 2)
        self.assertHeld(self.deliver("news@main.dom", sender="carol@far.dom"))
        envelope, data, _ = self.lastCopy()
        self.assertEqual([r.address for r in envelope.recipients],
                         ["mod@main.dom", "x@far.dom", "owner@main.dom"])
        self.assertEqual(envelope.sender, "news-bounces@main.dom")
        self.assertEqual(data, b"X-List-Held: news@main.dom; resend to the list to approve\r\n"
                               + POST)

    def test_approvedByResending(self):
        """A held post resent by a moderator goes out, without the X-List-Held mark."""
        self.makeList(subscribers=[("carol@far.dom", "feed")], PostingMode="moderated")
        self.assertHeld(self.deliver("news@main.dom"))
        envelope, held, _ = self.lastCopy()
        self.assertEqual([r.address for r in envelope.recipients], ["owner@main.dom"])
        resent = b"Resent-From: owner@main.dom\r\n" + held
        result = self.deliver("news@main.dom", sender="owner@main.dom", data=resent)
        self.assertEqual(result.status, DELIVERED)
        _, _, message = self.lastCopy()
        self.assertIsNone(message["X-List-Held"])
        self.assertEqual(message["From"], "Bob <bob@far.dom>")

    def test_banned(self):
        """A banned address may not post, even to an open list."""
        self.makeList(subscribers=[("bob@far.dom", "banned"), ("carol@far.dom", "feed")])
        self.assertRefused(self.deliver("news@main.dom"), "bob@far.dom is banned")

    def test_prohibited(self):
        """PROHIBITED refuses a subscriber's posts."""
        self.makeList(subscribers=[("bob@far.dom", "feed")])
        self.successResultOf(self.directory.setPostingMode("news", "bob@far.dom", "PROHIBITED"))
        self.assertRefused(self.deliver("news@main.dom"), "may not post")

    def test_moderateAll(self):
        """MODERATEALL holds every post of the subscriber, even on an open list."""
        self.makeList(subscribers=[("bob@far.dom", "feed")])
        self.successResultOf(self.directory.setPostingMode("news", "bob@far.dom", "MODERATEALL"))
        self.assertHeld(self.deliver("news@main.dom"))
        self.assertHeld(self.deliver("news@main.dom"))

    def test_numberOfModerated(self):
        """A number N holds the next N posts, counting down, then posts go out."""
        self.makeList(subscribers=[("bob@far.dom", "feed"), ("carol@far.dom", "feed")])
        self.successResultOf(self.directory.setPostingMode("news", "bob@far.dom", 2))
        self.assertHeld(self.deliver("news@main.dom"))
        self.assertEqual(self.directory.getSubscriberInfo("news", "bob@far.dom")["Posting"], 1)
        self.assertHeld(self.deliver("news@main.dom"))
        result = self.deliver("news@main.dom")
        self.assertIn("posted", result.text)

    def test_unmoderatedAndSpecial(self):
        """UNMODERATED and SPECIAL subscribers post to a moderated list."""
        self.makeList(subscribers=[("bob@far.dom", "feed"), ("carol@far.dom", "feed")],
                      PostingMode="moderated")
        self.successResultOf(self.directory.setPostingMode("news", "bob@far.dom", "UNMODERATED"))
        self.successResultOf(self.directory.setPostingMode("news", "carol@far.dom", "SPECIAL"))
        self.assertIn("posted", self.deliver("news@main.dom").text)
        self.assertIn("posted", self.deliver("news@main.dom", sender="carol@far.dom",
                                             data=b"Subject: x\r\n\r\nhi\r\n").text)

    def test_nullSender(self):
        """A message from the null sender that is no report is not posted."""
        self.makeList(subscribers=[("carol@far.dom", "feed")])
        self.assertRefused(self.deliver("news@main.dom", sender=""), "null sender")
        self.assertEqual(self.queue.submitted, [])

    def test_loops(self):
        """A post that went through the list already (X-Loop or List-Id) fails with 554."""
        self.makeList(subscribers=[("carol@far.dom", "feed")])
        for header in (b"X-Loop: news@main.dom\r\n", b'List-Id: "News" <news.main.dom>\r\n'):
            result = self.deliver("news@main.dom", data=header + POST)
            self.assertEqual((result.status, result.code), (FAILED, 554))
            self.assertIn("5.4.6", result.text)
        self.assertEqual(self.queue.submitted, [])


class HeaderTests(ChannelTestsMixin, SynchronousTestCase):
    """
    What a post looks like when the list sends it.
    """

    def test_listHeaders(self):
        """List-Id, List-Post, List-Unsubscribe, Precedence, X-Loop replace older ones."""
        self.makeList(subscribers=[("carol@far.dom", "feed")], RealName="Main News")
        self.deliver("news@main.dom")
        _, data, message = self.lastCopy()
        self.assertEqual(message.get_all("List-Id"), ['"Main News" <news.main.dom>'])
        self.assertEqual(message["List-Post"], "<mailto:news@main.dom>")
        self.assertEqual(message["List-Unsubscribe"],
                         "<mailto:owner@main.dom?subject=unsubscribe%20news@main.dom>")
        self.assertEqual(message.get_all("Precedence"), ["list"])
        self.assertEqual(message["X-Loop"], "news@main.dom")
        self.assertEqual(message["Subject"], "Hello")
        self.assertEqual(message["Message-ID"], "<p1@far.dom>")
        self.assertTrue(data.endswith(b"\r\n\r\nBody line\r\n"))
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))

    def test_subjectPrefix(self):
        """The prefix goes before the Subject once, and makes one when there is none."""
        self.makeList(subscribers=[("carol@far.dom", "feed")], SubjectPrefix="[news]")
        self.deliver("news@main.dom")
        self.assertEqual(self.lastCopy()[2]["Subject"], "[news] Hello")
        reply = POST.replace(b"Subject: Hello", b"Subject: Re: [NEWS] Hello")
        self.deliver("news@main.dom", data=reply)
        self.assertEqual(self.lastCopy()[2]["Subject"], "Re: [NEWS] Hello")
        self.deliver("news@main.dom", data=b"From: bob@far.dom\r\n\r\nhi\r\n")
        self.assertEqual(self.lastCopy()[2]["Subject"], "[news]")

    def test_foldedAndEncodedSubject(self):
        """Folded and encoded subjects keep their form behind the prefix."""
        self.makeList(subscribers=[("carol@far.dom", "feed")], SubjectPrefix="[news]")
        folded = POST.replace(b"Subject: Hello", b"Subject: =?utf-8?q?H=C3=A9llo?=\r\n world")
        self.deliver("news@main.dom", data=folded)
        _, data, message = self.lastCopy()
        self.assertIn(b"Subject: [news] =?utf-8?q?H=C3=A9llo?=\r\n world\r\n", data)

    def test_replyToList(self):
        """ReplyTo=list replaces the Reply-To; sender (the default) keeps it."""
        self.makeList(subscribers=[("carol@far.dom", "feed")])
        post = b"Reply-To: bob@home.dom\r\n" + POST
        self.deliver("news@main.dom", data=post)
        self.assertEqual(self.lastCopy()[2]["Reply-To"], "bob@home.dom")
        self.successResultOf(self.directory.updateList("news", {"ReplyTo": "list"}))
        self.deliver("news@main.dom", data=post)
        self.assertEqual(self.lastCopy()[2].get_all("Reply-To"), ["<news@main.dom>"])

    def test_editHeaders(self):
        """editHeaders drops fields with their folded lines and keeps the body."""
        data = b"A: 1\r\nB: 2\r\n  more\r\nC: 3\r\n\r\nB: body\r\n"
        self.assertEqual(editHeaders(data, drop={"b"}, add=["D: 4"]),
                         b"D: 4\r\nA: 1\r\nC: 3\r\n\r\nB: body\r\n")
        self.assertEqual(editHeaders(b"A: 1", add=["D: 4"]), b"D: 4\r\nA: 1\r\n\r\n")
        self.assertEqual(editHeaders(b"Subject:\r\n\r\nx", subjectPrefix="[p]"),
                         b"Subject: [p]\r\n\r\nx")


class GroupTests(ChannelTestsMixin, SynchronousTestCase):
    """
    Group expansion: unchanged copies to the members, no loops.
    """

    def expansion(self, group="team"):
        result = self.deliver(group + "@main.dom")
        self.assertEqual(result.status, DELIVERED)
        envelope, data = self.queue.submitted[-1]
        return [r.address for r in envelope.recipients], envelope, data

    def test_members(self):
        """Members get the message unchanged, from the original sender; bare names are local."""
        self.successResultOf(self.directory.createGroup(
            "team", {"Members": ["alice", "x@far.dom", "ALICE@main.dom"]}))
        members, envelope, data = self.expansion()
        self.assertEqual(members, ["alice@main.dom", "x@far.dom"])
        self.assertEqual(envelope.sender, "bob@far.dom")
        self.assertTrue(envelope.trusted)
        self.assertEqual(data, POST)

    def test_emptyGroup(self):
        """A group without members is done at once."""
        self.successResultOf(self.directory.createGroup("team", {}))
        self.assertEqual(self.deliver("team@main.dom").status, DELIVERED)
        self.assertEqual(self.queue.submitted, [])

    def test_memberGroupResubmitted(self):
        """Without ExpandGroups a member group gets the message at its own address."""
        d = self.directory
        self.successResultOf(d.createGroup("inner", {"Members": ["mod"]}))
        self.successResultOf(d.createGroup("team", {"Members": ["alice", "inner"]}))
        self.assertEqual(self.expansion()[0], ["alice@main.dom", "inner@main.dom"])

    def test_expandGroups(self):
        """With ExpandGroups member groups are expanded here, duplicates dropped."""
        d = self.directory
        self.successResultOf(d.createGroup("inner", {"Members": ["mod", "alice"]}))
        self.successResultOf(d.createGroup("team", {"Members": ["alice", "inner"],
                                                    "ExpandGroups": "YES"}))
        self.assertEqual(self.expansion()[0], ["alice@main.dom", "mod@main.dom"])

    def test_cycle(self):
        """Groups naming each other are expanded inline: nobody gets the message twice."""
        d = self.directory
        self.successResultOf(d.createGroup("a", {"Members": ["alice", "b"]}))
        self.successResultOf(d.createGroup("b", {"Members": ["mod", "a"]}))
        self.assertEqual(self.expansion("a")[0], ["alice@main.dom", "mod@main.dom"])
        self.assertEqual(self.expansion("b")[0], ["mod@main.dom", "alice@main.dom"])

    def test_cycleThroughForwarder(self):
        """A forwarder leading back to the group counts as the group."""
        d = self.directory
        self.successResultOf(d.createForwarder("back", "team@main.dom"))
        self.successResultOf(d.createGroup("team", {"Members": ["alice", "back"]}))
        self.assertEqual(self.expansion()[0], ["alice@main.dom"])

    def test_removeDuplicatesAndReplyTo(self):
        """RemoveDuplicates skips members in To/Cc; SetReplyTo sets Reply-To to the group."""
        self.successResultOf(self.directory.createGroup(
            "team", {"Members": ["alice", "x@far.dom"], "RemoveDuplicates": "YES",
                     "SetReplyTo": "YES"}))
        post = POST.replace(b"To: news@main.dom", b"To: team@main.dom\r\nCc: X <X@far.dom>")
        result = self.deliver("team@main.dom", data=post)
        self.assertEqual(result.status, DELIVERED)
        envelope, data = self.queue.submitted[-1]
        self.assertEqual([r.address for r in envelope.recipients], ["alice@main.dom"])
        self.assertEqual(email.message_from_bytes(data)["Reply-To"], "<team@main.dom>")


def report(listCopy, failed=(), delayed=(), code=550, text="5.1.1 unknown user"):
    """
    A DSN from cgpro's queue about a list copy.
    """
    envelope, data = listCopy
    clock = Clock()
    clock.advance(1795000000)
    entries = []
    for recipient in envelope.recipients:
        if recipient.address in failed:
            entries.append(dsn.ReportEntry(recipient, dsn.FAILED, code, text, "mx.far.dom"))
        elif recipient.address in delayed:
            entries.append(dsn.ReportEntry(recipient, dsn.DELAYED, 451, "4.4.1 no answer"))
    return dsn.makeReport(envelope, data, entries, "far.dom", clock)


FOREIGN_REPORT = (
    b"From: MAILER-DAEMON@mx.far.dom\r\n"
    b"To: news-bounces@main.dom\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"I'm sorry to have to inform you...\r\n"
    b"--B\r\n"
    b"Content-Type: message/delivery-status\r\n"
    b"\r\n"
    b"Reporting-MTA: dns; mx.far.dom\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; Carol@far.dom\r\n"
    b"Action: failed\r\n"
    b"Status: 5.2.2\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; dan@far.dom\r\n"
    b"Action: delivered\r\n"
    b"Status: 2.0.0\r\n"
    b"\r\n"
    b"--B--\r\n")


class BounceTests(ChannelTestsMixin, SynchronousTestCase):
    """
    Delivery reports to <list>-bounces count bounces; BounceLimit unsubscribes.
    """

    def setUp(self):
        ChannelTestsMixin.setUp(self)
        self.makeList(subscribers=[("carol@far.dom", "feed"), ("dan@far.dom", "feed"),
                                   ("weird+tag=x@far.dom", "feed")], BounceLimit=2)
        self.deliver("news@main.dom")
        self.copy = self.queue.submitted[-1]

    def bounces(self, address):
        return self.directory.getSubscriberInfo("news", address).get("Bounces")

    def test_parseReport(self):
        """parseReport reads the Action and addresses of each recipient block."""
        found = parseReport(report(self.copy, failed=["carol@far.dom"]))
        self.assertEqual(found, [("failed", ["carol@far.dom"])])
        self.assertEqual(parseReport(FOREIGN_REPORT),
                         [("failed", ["carol@far.dom"]), ("delivered", ["dan@far.dom"])])
        self.assertIsNone(parseReport(MESSAGE))
        self.assertEqual(xtext("a+b=c@d é"), "a+2Bb+3Dc@d+20+C3+A9")

    def test_countAndUnsubscribe(self):
        """Each failed report adds a bounce; at BounceLimit the subscriber is removed."""
        first = self.deliver("news-bounces@main.dom", sender="",
                             data=report(self.copy, failed=["carol@far.dom"]))
        self.assertEqual(first.status, DELIVERED)
        self.assertEqual(self.bounces("carol@far.dom"), 1)
        self.assertEqual(self.bounces("dan@far.dom"), 0)
        self.deliver("news-bounces@main.dom", sender="",
                     data=report(self.copy, failed=["carol@far.dom", "dan@far.dom"]))
        self.assertEqual(self.directory.listSubscribers("news"),
                         ["dan@far.dom", "weird+tag=x@far.dom"])
        self.assertEqual(self.bounces("dan@far.dom"), 1)
        self.assertEqual(self.channel.stats["unsubscribed"], 1)
        self.deliver("news@main.dom")
        self.assertNotIn("carol@far.dom",
                         [r.address for r in self.queue.submitted[-1][0].recipients])

    def test_originalRecipientMatches(self):
        """The ORCPT the list set finds the subscriber, xtext and all."""
        self.deliver("news-bounces@main.dom", sender="",
                     data=report(self.copy, failed=["weird+tag=x@far.dom"]))
        self.assertEqual(self.bounces("weird+tag=x@far.dom"), 1)
        raw = report(self.copy, failed=["weird+tag=x@far.dom"]).replace(
            b"Original-Recipient: rfc822;weird+tag=x@far.dom",
            b"Original-Recipient: rfc822;weird+2Btag+3Dx@far.dom").replace(
            b"Final-Recipient: rfc822; weird+tag=x@far.dom",
            b"Final-Recipient: rfc822; forwarded@elsewhere.dom")
        self.deliver("news-bounces@main.dom", sender="", data=raw)
        self.assertEqual(self.directory.listSubscribers("news"), ["carol@far.dom", "dan@far.dom"])

    def test_foreignReport(self):
        """A report from another MTA (Final-Recipient only) counts too."""
        self.deliver("news-bounces@main.dom", sender="", data=FOREIGN_REPORT)
        self.assertEqual(self.bounces("carol@far.dom"), 1)
        self.assertEqual(self.bounces("dan@far.dom"), 0)

    def test_delayNotCounted(self):
        """A delay is noted, not counted."""
        self.deliver("news-bounces@main.dom", sender="",
                     data=report(self.copy, delayed=["dan@far.dom"]))
        info = self.directory.getSubscriberInfo("news", "dan@far.dom")
        self.assertEqual(info["Bounces"], 0)
        self.assertEqual(info["LastBounce"], self.directory.now())

    def test_reportToListAddress(self):
        """A report sent to the list's own address from the null sender counts, is not posted."""
        submitted = len(self.queue.submitted)
        result = self.deliver("news@main.dom", sender="",
                              data=report(self.copy, failed=["carol@far.dom"]))
        self.assertEqual(result.status, DELIVERED)
        self.assertEqual(self.bounces("carol@far.dom"), 1)
        self.assertEqual(len(self.queue.submitted), submitted)

    def test_otherMailDropped(self):
        """Anything else to the bounce address is dropped and changes nothing."""
        result = self.deliver("news-bounces@main.dom", sender="bob@far.dom")
        self.assertEqual(result.status, DELIVERED)
        self.assertIn("discarded", result.text)
        self.assertEqual(self.bounces("carol@far.dom"), 0)
        self.assertEqual(len(self.queue.submitted), 1)

    def test_writeFailureDefers(self):
        """A bounce that cannot be recorded is retried later, not lost or counted twice."""
        self.patch(self.directory.storage.writer, "write",
                   lambda *a, **kw: fail(OSError("disk full")))
        results = self.channel.deliver(self.job("news-bounces@main.dom", sender="",
                                                data=report(self.copy, failed=["carol@far.dom"])))
        self.failureResultOf(results)
        self.assertEqual(self.bounces("carol@far.dom"), 0)
        self.flushLoggedErrors(OSError)


class PipelineTests(SynchronousTestCase):
    """
    Through a real queue: a post goes out, a remote subscriber fails, the
    DSN comes back to the list, and after BounceLimit posts he is gone.
    """

    def test_bounceCycle(self):
        """Post, SMTP failure, DSN to news-bounces, count; unsubscribed at the limit."""
        queue, directory, clock = makeQueue(self)
        self.successResultOf(directory.createList("news", "alice"))
        self.successResultOf(directory.updateList("news", {"BounceLimit": 2}))
        for address in ("bob@main.dom", "x@far.dom"):
            self.successResultOf(directory.subscribe("news", address, "feed"))
        local = FakeChannel("LOCAL")
        smtp = FakeChannel("SMTP", answer=lambda job: [
            RecipientResult(r.index, FAILED, 550, "5.1.1 no such user", "mx.far.dom")
            for r, _ in job.recipients])
        channel = ListChannel(directory, queue, clock=clock)
        for c in (local, smtp, channel):
            queue.registerChannel(c)
        queue.start()
        post = Envelope(sender="carol@other.dom")
        post.addRecipient("news@main.dom")
        for n in (1, 2):
            self.successResultOf(queue.submit(post, POST))
            self.assertEqual(len(smtp.jobs), n)
        self.assertEqual(directory.listSubscribers("news"), ["bob@main.dom"])
        self.assertEqual([job.queue for job in local.jobs], ["bob@main.dom", "bob@main.dom"])
        self.assertEqual(channel.stats, {"posted": 2, "held": 0, "refused": 0, "expanded": 0,
                                         "reports": 2, "unsubscribed": 1})
        self.assertEqual(queue.messageCount, 0)
