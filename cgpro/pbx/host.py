# -*- test-case-name: tests.pbx.test_host -*-
"""
The Real-Time Application module: it runs the application a call was
routed to (Router target C{app{params}#account@domain}) as a L{Task}.

Applications are Python modules with a C{run(task)} generator (run with
C{inlineCallbacks}) and optionally C{message(task, text)} for instant
messages.  The stock ones are the modules of L{cgpro.pbx.apps}; the
server administrator may install more as C{<name>.py} in the server-wide
environment (C{STORESERVERPBXFILE}), which then shadow the stock ones.
Domain environments hold prompts and data files only: a domain
administrator cannot install code (L{cgpro.pbx.environment}).

Whatever way an application ends (returns, raises, the caller hangs up
mid-prompt), its task is hung up, its media channel closed and one call
detail record written per task: L{ApplicationHost.ended}.
"""

import importlib
import importlib.util
import math
import os

from twisted.application import service
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger
from zope.interface import implementer

import cgpro.pbx.envcommands  # noqa: F401  (the PBX CLI commands)
from cgpro.core.rtinterfaces import IApplicationHost
from cgpro.pbx.cdr import CDRLog
from cgpro.pbx.chronos import Chronos
from cgpro.pbx.environment import Environments, FileNotFound
from cgpro.pbx.task import Hangup, Task

log = Logger()

#: Seconds between two checks for calls whose media stopped.
IDLE_CHECK = 10

#: The stock applications (modules of L{cgpro.pbx.apps}).
STOCK = ("pbx", "voicemail", "service", "gatewaycaller", "gatewayincoming",
         "localareacall", "emergency", "conference", "acd", "rsipregister")


@implementer(IApplicationHost)
class ApplicationHost(service.Service):
    """
    @ivar tasks: the live tasks (calls and call-outs).
    @ivar figures: counters (C{started}, C{failed}, C{digits}, ...).
    """

    name = "pbx"

    def __init__(self, context, environments=None, cdr=None):
        self.context = context
        self.clock = context.reactor
        self.directory = context.directory
        self.signal = context.signal
        self.media = context.mediaServer
        writer = getattr(context, "writer", None)
        self.environments = environments or Environments(context.base, writer=writer)
        self.cdr = cdr or CDRLog(context.base, writer, self.clock)
        # the CLI commands (envcommands) share these
        context.pbxEnvironments = self.environments
        context.cdrLog = self.cdr
        self.chronos = Chronos(self.clock)
        self.tasks = set()
        self.figures = {}
        self.conferences = {}
        self.queues = {}
        self._modules = {}
        self.rsip = None
        self._registerStats(getattr(context, "stats", None))

    @property
    def ua(self):
        return self.signal.ua

    def _registerStats(self, catalog):
        if catalog is None:
            return
        catalog.callback("cgpro_pbx_tasks", lambda: len(self.tasks))
        catalog.callback("cgpro_pbx_conferences", lambda: len(self.conferences))
        catalog.callback("cgpro_pbx_events_total",
                         lambda: {(kind,): n for kind, n in self.figures.items()})

    def startService(self):
        service.Service.startService(self)
        from cgpro.pbx.rsip import RSIPManager

        self.rsip = RSIPManager(self)
        self.rsip.start()
        self.chronos.schedule("media-idle", self.clock.seconds() + IDLE_CHECK, self.checkIdle)

    def checkIdle(self):
        """
        Hang up the calls whose caller has sent no RTP for the media
        server's C{idleTimeout} (the relay's C{MediaIdleTimeout}): a phone
        that vanished without a BYE must not hold a conference seat, a
        queue position or a port for ever.
        """
        limit = getattr(self.media, "idleTimeout", None) or 60
        now = self.clock.seconds()
        for task in list(self.tasks):
            channel = task.channel
            if (channel is None or task.answeredAt is None or task.ended is not None
                    or now - max(channel.lastReceived, task.answeredAt) < limit):
                continue
            log.info("PBX {app}: call {callId} sent no media for {limit} s; hanging up",
                     app=task.app, callId=task.dialog.callId, limit=limit)
            self.count("media_timeouts")
            task.result = (408, "no media for %d s" % (limit,))
            task.hangup()
        if self.running:
            self.chronos.schedule("media-idle", now + IDLE_CHECK, self.checkIdle)

    def stopService(self):
        service.Service.stopService(self)
        if self.rsip is not None:
            self.rsip.stop()
        self.chronos.stop()
        for task in list(self.tasks):
            task.hangup()

    def count(self, name, n=1):
        self.figures[name] = self.figures.get(name, 0) + n

    # -- applications ----------------------------------------------------------

    def application(self, name):
        """
        @return: the module of application C{name}, or C{None}.
        """
        key = name.lower()
        if not key.replace("_", "").isalnum():
            return None
        custom = self.environments.find(None, key + ".py")
        if custom is not None and not custom.startswith(self.environments.stock):
            mtime = os.stat(custom).st_mtime
            cached = self._modules.get(key)
            if cached is None or cached[0] != mtime:
                spec = importlib.util.spec_from_file_location("cgpro_pbx_custom_" + key, custom)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._modules[key] = cached = (mtime, module)
            return cached[1]
        if key in STOCK:
            return importlib.import_module("cgpro.pbx.apps." + key)
        return None

    def startApplication(self, transaction, request, route):
        """See L{IApplicationHost.startApplication}."""
        name = route.app or ""
        try:
            module = self.application(name)
        except Exception:
            log.failure("PBX: application {app} cannot be loaded", app=name)
            module = None
        if module is None:
            log.info("PBX: call {callId} for unknown application {app}",
                     callId=request.callId, app=name)
            self.count("unknown")
            self.ua.respond(transaction, 404, "Unknown application %s" % (name,))
            return
        if request.method == "MESSAGE":
            self._message(module, transaction, request, route)
            return
        dialog = self.ua.answerable(transaction, request)
        task = Task(self, dialog, route.account, name, route.params or ())
        task.called = route.original
        self.adopt(task)
        self.count("started")
        self._run(module, task)

    def _message(self, module, transaction, request, route):
        """
        An instant message to an application: its C{message(host, route,
        sender, text)} answers with the text to send back (or C{None}).
        """
        handler = getattr(module, "message", None)
        if handler is None:
            self.ua.respond(transaction, 405, "Application %s takes no messages"
                                % (route.app,))
            return
        self.ua.respond(transaction, 200)
        self.count("messages")
        sender = str(request.fromAddr.uri)
        try:
            reply = handler(self, route, sender, request.body.decode("utf-8", "replace"))
        except Exception:
            log.failure("PBX {app}: message from {sender} failed", app=route.app,
                        sender=sender)
            return
        if reply:
            d = self.ua.request("MESSAGE", sender, "sip:" + route.account, toURI=sender,
                                body=reply.encode("utf-8"), contentType="text/plain")
            d.addErrback(lambda f: log.failure("PBX {app}: reply to {sender} failed", f,
                                               app=route.app, sender=sender))

    @inlineCallbacks
    def _run(self, module, task):
        try:
            yield inlineCallbacks(module.run)(task)
        except Hangup:
            pass
        except Exception:
            self.count("failed")
            log.failure("PBX {app}: call {callId} failed", app=task.app,
                        callId=task.dialog.callId)
            if task.ended is None and task.answeredAt is None:
                task.reject(500, "Application %s failed" % (task.app,))
        finally:
            if task.ended is None:
                task.hangup()

    def adopt(self, task):
        self.tasks.add(task)

    def ended(self, task):
        """A task's call ended: forget it and write its CDR."""
        if task not in self.tasks:
            return
        self.tasks.discard(task)
        now = self.clock.seconds()
        code, text = task.result or (200, task.ended or "")
        record = {
            "Leg": "callout" if task.parent is not None else "call",
            "Application": task.app,
            "Account": task.account or "",
            "From": task.dialog.remoteURI if task.dialog.incoming else task.dialog.localURI,
            "To": (getattr(task, "called", None) or task.dialog.localURI)
            if task.dialog.incoming else task.dialog.remoteURI,
            "CallID": task.dialog.callId,
            "Start": task.startedAt,
            "End": now,
            "Result": "%d %s" % (code, text),
        }
        if task.caller:
            record["Caller"] = task.caller
        if task.answeredAt is not None:
            record["Answer"] = task.answeredAt
            record["Duration"] = int(now - task.answeredAt)
        if task.cost is not None and task.answeredAt is not None:
            minutes = math.ceil((now - task.answeredAt) / 60.0)
            record["Cost"] = task.cost * minutes
        try:
            self.cdr.record(record)
        except Exception:
            log.failure("PBX: CDR not written for {callId}", callId=task.dialog.callId)

    def transferred(self, kept, target):
        """Task C{kept} now talks to C{target} (a transfer was carried out)."""
        self.count("transfers")

    # -- files ---------------------------------------------------------------

    def prompt(self, domain, name, language=None):
        """
        @return: the L{IPrompt} of C{name} (C{.wav} then C{.au} when no
            extension) in the environments of C{domain}.
        @raise LookupError: not found.
        """
        candidates = [name] if "." in name else [name + ".wav", name + ".au"]
        for candidate in candidates:
            path = self.environments.find(domain, candidate, language)
            if path is not None:
                return self.media.loadPrompt(path)
        raise LookupError("prompt %s not found" % (name,))

    def greetingPath(self, account):
        """
        @return: where C{account}'s personal voicemail greeting is kept
            (C{greeting.wav} in the account's folder), or C{None}.
        """
        storage = getattr(self.directory, "storage", None)
        if storage is None or not account or "@" not in account:
            return None
        name, _, domain = account.partition("@")
        return os.path.join(storage.accountPath(domain, name), "greeting.wav")

    def dataFile(self, domain, name):
        """
        @return: the parsed C{.objdata} file C{name}, or C{None} when there
            is none.
        @raise MalformedData: it is not a data-format dictionary.
        """
        try:
            return self.environments.loadObjData(domain, name)
        except FileNotFound:
            return None
