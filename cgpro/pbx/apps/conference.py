"""
C{conference}: conference rooms (the C{conference} alias of the C{pbx}
account, or C{conference{room}#account} from a Router record).

Every caller of a room is answered with a media server channel that joins
the room's mixer (L{cgpro.core.rtinterfaces.IConference}): each hears the
sum of the others, in his own codec (PCMU or PCMA).  A chime tells the
room when someone joins or leaves; the room goes when the last one does.
"""

from twisted.logger import Logger

from cgpro.pbx.task import Hangup

log = Logger()


def roomName(task):
    if task.params and task.params[0]:
        return task.params[0].lower()
    return (task.account or "conference").lower()


def _chime(task, room, name):
    try:
        room.play(task.prompt(name))
    except LookupError:
        pass


def run(task):
    host = task.host
    name = roomName(task)
    yield task.accept()
    try:
        yield task.play("conferencewelcome", interrupt=False)
    except Hangup:
        return
    room = host.conferences.get(name)
    if room is None:
        room = host.conferences[name] = host.media.openConference()
    channel = task.channel
    _chime(task, room, "conferencejoin")
    room.add(channel)
    host.count("conference_joins")
    log.info("PBX conference {room}: {caller} joined ({n} in the room)", room=name,
             caller=task.remoteURI, n=len(room.members()))
    try:
        yield task.waitEnd()
    finally:
        room.remove(channel)
        if room.members():
            _chime(task, room, "conferenceleave")
        elif host.conferences.get(name) is room:
            del host.conferences[name]
