"""
C{acd{queue[,agent...]}#account}: a simple call queue (automatic call
distribution).

Callers wait in order of arrival, hearing hold music and, every
L{ANNOUNCE} seconds, their position.  The caller at the head of the queue
is offered to the agents in turn (round robin, each ringing for
L{AGENT_RING} seconds): the members of the Group named by the first
parameter in the account's domain, or the agents listed after it.  The
first agent to answer is joined with the caller; an agent already
talking to a caller of the queue is skipped.
"""

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from cgpro.pbx import calls
from cgpro.pbx.task import CallFailed

log = Logger()

AGENT_RING = 15
ANNOUNCE = 30


class CallQueue:
    def __init__(self, name):
        self.name = name
        self.waiting = []
        self.dialling = False
        self.next = 0
        self.busy = set()


def agents(task):
    """The agents' accounts, in order."""
    names = list(task.params[1:])
    if task.params and task.params[0]:
        try:
            group = task.host.directory.getGroup("%s@%s" % (task.params[0], task.domain))
            names = list(group.get("Members", ())) + names
        except Exception:
            pass
    found = []
    for name in names:
        account = calls.localAccount(task.host, name, task.domain)
        if account is not None and account not in found:
            found.append(account)
    return found


@inlineCallbacks
def offer(task, queue):
    """Ring the agents in turn; @return: the answered agent's task or C{None}."""
    pool = [a for a in agents(task) if a not in queue.busy]
    for i in range(len(pool)):
        account = pool[(queue.next + i) % len(pool)]
        try:
            agent = yield task.callOut(calls.uriOf(account), timeout=AGENT_RING)
        except CallFailed:
            continue
        queue.next = (queue.next + i + 1) % max(len(pool), 1)
        agent.agentAccount = account
        return agent
    return None


def run(task):
    host = task.host
    name = (task.params[0] if task.params and task.params[0] else task.account).lower()
    queue = host.queues.get(name)
    if queue is None:
        queue = host.queues[name] = CallQueue(name)
    yield task.accept()
    queue.waiting.append(task)
    host.count("acd_callers")
    try:
        yield task.play("queuewelcome", interrupt=False)
        lastAnnounce = host.clock.seconds()
        while True:
            position = queue.waiting.index(task) + 1
            if position == 1 and not queue.dialling:
                queue.dialling = True
                task.playLoop("holdmusic")
                try:
                    agent = yield offer(task, queue)
                finally:
                    queue.dialling = False
                if agent is not None:
                    queue.waiting.remove(task)
                    queue.busy.add(agent.agentAccount)
                    host.count("acd_answered")
                    try:
                        yield task.bridge(agent)
                        yield task.waitEnd()
                    finally:
                        queue.busy.discard(agent.agentAccount)
                    return
            now = host.clock.seconds()
            if now - lastAnnounce >= ANNOUNCE:
                lastAnnounce = now
                task.stopPlaying()
                yield task.play(*(["queueposition"] + ["digit" + c for c in str(position)]),
                                interrupt=False)
            task.playLoop("holdmusic")
            yield task.sleep(5)
    finally:
        if task in queue.waiting:
            queue.waiting.remove(task)
        if not queue.waiting and not queue.busy and host.queues.get(name) is queue:
            del host.queues[name]
