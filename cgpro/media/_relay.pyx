# -*- test-case-name: tests.media.test_sockets -*-
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""
The media relay's forwarding loop in C (an L{IRelayEngine}).

One epoll set holds every relay socket; the loop (in its own thread with the
GIL released, or called from the reactor when the epoll descriptor is
readable) drains each readable socket with C{recvmmsg} in batches of 64,
checks and counts every packet in C structs, and sends the accepted ones on
with one C{sendmmsg} per batch.  No Python object is made per packet.

A socket is IPv4 or IPv6 (C{IPV6_V6ONLY}); each keeps its latched and
expected addresses in a union of C{sockaddr_in} and C{sockaddr_in6}, and a
batch is sent with the peer socket's address length, so a leg of either
family forwards to a leg of either family (IPv4/IPv6 bridging).

Epoll is level-triggered and each wakeup reads at most 8 batches from one
socket before going on to the next: under overload every socket keeps being
served (a flooded socket cannot starve the others, and nothing is left
unread once the load drops: rtpengine 10.5 stops reading overflowed sockets,
see ../shared/bench/rtp/RESULTS.md).

Commands from Python (add, update, remove a socket; read counters) take the
engine's mutex, which the loop holds only while it handles one socket's
batch: they wait at most a few hundred microseconds.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, memcmp
from libc.errno cimport errno, EINTR, EAGAIN
from posix.unistd cimport close, write, read
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from zope.interface import implementer

from cgpro.media.interfaces import IRelayEngine


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *, void *)
    int pthread_mutex_destroy(pthread_mutex_t *)
    int pthread_mutex_lock(pthread_mutex_t *)
    int pthread_mutex_unlock(pthread_mutex_t *)


cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    int EFD_NONBLOCK
    int EFD_CLOEXEC


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLL_CTL_ADD
    int EPOLL_CTL_DEL
    int EPOLLIN
    int EPOLL_CLOEXEC


cdef extern from "<netinet/in.h>" nogil:
    ctypedef uint32_t in_addr_t
    ctypedef uint16_t in_port_t
    struct in_addr:
        in_addr_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        in_port_t sin_port
        in_addr sin_addr
    struct in6_addr:
        uint8_t s6_addr[16]
    struct sockaddr_in6:
        unsigned short sin6_family
        in_port_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    uint16_t ntohs(uint16_t)
    uint16_t htons(uint16_t)
    int AF_INET
    int AF_INET6


cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)
    const char *inet_ntop(int af, const void *src, char *dst, unsigned int size)


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int fd, mmsghdr *vmessages, unsigned int vlen, int flags, timespec *tmo)
    int sendmmsg(int fd, mmsghdr *vmessages, unsigned int vlen, int flags)
    int MSG_DONTWAIT
    int MSG_TRUNC


cdef enum:
    BATCH = 64          # packets per recvmmsg/sendmmsg
    ROUNDS = 8          # batches per socket per wakeup (fairness)
    BUFSIZE = 2048      # bytes per packet buffer (larger: dropped as malformed)
    EVENTS = 256        # epoll events per round
    MAX_DROPOUT = 3000  # RFC 3550 A.1
    MAX_MISORDER = 100

#: the epoll tag of the wake-up eventfd (slots are small integers)
cdef uint64_t WAKEUP = 0xFFFFFFFF


cdef union Addr:
    # a socket address of either family (the family is the leg's)
    sockaddr_in v4
    sockaddr_in6 v6


cdef struct RtpStat:
    # RFC 3550 A.1/A.3/A.8, the same fields as _fallback.RtpStatistics
    uint32_t ssrc
    int started
    uint32_t maxSeq
    uint32_t cycles
    uint32_t baseSeq
    uint32_t badSeq
    uint64_t received
    int64_t lostBefore
    uint32_t transit
    int haveTransit
    double jitter


cdef struct Leg:
    int fd
    int active
    int peer
    int rtcp
    int family              # AF_INET or AF_INET6, the socket's
    socklen_t addrlen       # sizeof(sockaddr_in) or sizeof(sockaddr_in6)
    int latched
    int haveExpected
    Addr latch
    Addr expected
    double scale            # RTP clock rate / 1e9
    uint64_t packets
    uint64_t bytes
    uint64_t forwarded
    uint64_t droppedForeign
    uint64_t droppedMalformed
    uint64_t droppedNoRoute
    uint64_t droppedSendError
    RtpStat rtp


cdef inline int64_t rtpLost(RtpStat *s) noexcept nogil:
    if not s.started:
        return s.lostBefore
    return s.lostBefore + <int64_t>(s.cycles + s.maxSeq - s.baseSeq + 1) - <int64_t>s.received


cdef inline void rtpRestart(RtpStat *s, uint32_t seq) noexcept nogil:
    s.lostBefore = rtpLost(s)
    s.baseSeq = seq
    s.maxSeq = seq
    s.cycles = 0
    s.received = 0
    s.badSeq = 0x10001


cdef inline void rtpUpdate(RtpStat *s, uint32_t seq, uint32_t ts, uint32_t ssrc,
                           uint32_t arrival) noexcept nogil:
    cdef uint32_t delta, transit, d
    if not s.started or ssrc != s.ssrc:
        if s.started:
            rtpRestart(s, seq)
        else:
            s.baseSeq = seq
            s.maxSeq = seq
            s.started = 1
        s.ssrc = ssrc
        s.haveTransit = 0
    else:
        delta = (seq - s.maxSeq) & 0xFFFF
        if delta < MAX_DROPOUT:
            if seq < s.maxSeq:
                s.cycles += 0x10000
            s.maxSeq = seq
        elif delta <= 0x10000 - MAX_MISORDER:
            if seq != s.badSeq:
                s.badSeq = (seq + 1) & 0xFFFF
                return
            rtpRestart(s, seq)
    s.received += 1
    transit = arrival - ts
    if s.haveTransit:
        d = transit - s.transit
        if d & 0x80000000u:
            d = 0 - d
        s.jitter += (<double>d - s.jitter) / 16.0
    s.transit = transit
    s.haveTransit = 1


cdef inline int sameAddress(int family, Addr *a, Addr *b) noexcept nogil:
    if family == AF_INET:
        return a.v4.sin_port == b.v4.sin_port and a.v4.sin_addr.s_addr == b.v4.sin_addr.s_addr
    return (a.v6.sin6_port == b.v6.sin6_port
            and memcmp(&a.v6.sin6_addr, &b.v6.sin6_addr, sizeof(in6_addr)) == 0
            and a.v6.sin6_scope_id == b.v6.sin6_scope_id)


cdef inline int64_t monotonicNs() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef object addressTuple(int family, Addr *a):
    """
    @return: C{(host, port)}, the host as C{inet_ntop} writes it (an IPv6
        one unbracketed, without scope: as Twisted gives it to the
        fallback).
    """
    cdef char text[64]
    if family == AF_INET6:
        inet_ntop(AF_INET6, &a.v6.sin6_addr, text, sizeof(text))
        return (text.decode("ascii"), ntohs(a.v6.sin6_port))
    inet_ntop(AF_INET, &a.v4.sin_addr, text, sizeof(text))
    return (text.decode("ascii"), ntohs(a.v4.sin_port))


cdef class _Loop:
    """
    The C state and loop of L{CEngine} (an extension type cannot carry the
    zope.interface declaration, its Python subclass does).
    """

    cdef Leg *legs
    cdef int nslots
    cdef int epfd
    cdef int wakefd
    cdef int stopping
    cdef pthread_mutex_t lock
    cdef mmsghdr rmm[BATCH]
    cdef mmsghdr smm[BATCH]
    cdef iovec riov[BATCH]
    cdef iovec siov[BATCH]
    cdef Addr rsrc[BATCH]
    cdef uint8_t *bufs
    cdef readonly object threaded
    cdef object thread
    cdef readonly uint64_t wakeups

    def __cinit__(self, reactor, int slots, threaded=True):
        cdef int i
        cdef epoll_event ev
        self.epfd = -1
        self.wakefd = -1
        self.legs = <Leg *>calloc(slots, sizeof(Leg))
        self.bufs = <uint8_t *>calloc(BATCH, BUFSIZE)
        if self.legs == NULL or self.bufs == NULL:
            raise MemoryError()
        self.nslots = slots
        pthread_mutex_init(&self.lock, NULL)
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        self.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.epfd < 0 or self.wakefd < 0:
            raise OSError(errno, "media relay: epoll/eventfd")
        ev.events = EPOLLIN
        ev.data.u64 = WAKEUP
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.wakefd, &ev)
        memset(self.rmm, 0, sizeof(self.rmm))
        memset(self.smm, 0, sizeof(self.smm))
        for i in range(BATCH):
            self.riov[i].iov_base = self.bufs + i * BUFSIZE
            self.riov[i].iov_len = BUFSIZE
            self.rmm[i].msg_hdr.msg_iov = &self.riov[i]
            self.rmm[i].msg_hdr.msg_iovlen = 1
            self.rmm[i].msg_hdr.msg_name = &self.rsrc[i]
            self.smm[i].msg_hdr.msg_iov = &self.siov[i]
            self.smm[i].msg_hdr.msg_iovlen = 1
        self.threaded = bool(threaded)
        self.thread = None

    def __dealloc__(self):
        if self.epfd >= 0:
            close(self.epfd)
        if self.wakefd >= 0:
            close(self.wakefd)
        pthread_mutex_destroy(&self.lock)
        free(self.legs)
        free(self.bufs)

    # -- the loop ---------------------------------------------------------

    cdef void handle(self, int slot) noexcept nogil:
        """
        Drain up to ROUNDS batches from one socket; the caller holds the lock.
        """
        cdef Leg *leg = &self.legs[slot]
        cdef Leg *peer
        cdef Addr *dest
        cdef socklen_t destlen = 0
        cdef int r, i, n, s, off, rounds, length
        cdef uint8_t *p
        cdef int isRtp
        cdef int64_t now
        cdef msghdr *h
        for rounds in range(ROUNDS):
            if not leg.active:
                return
            for i in range(BATCH):
                self.rmm[i].msg_hdr.msg_namelen = sizeof(Addr)
                self.rmm[i].msg_hdr.msg_flags = 0
            r = recvmmsg(leg.fd, self.rmm, BATCH, MSG_DONTWAIT, NULL)
            if r <= 0:
                return
            now = 0 if leg.rtcp else monotonicNs()
            peer = NULL
            dest = NULL
            if 0 <= leg.peer < self.nslots and self.legs[leg.peer].active:
                peer = &self.legs[leg.peer]
                destlen = peer.addrlen
                if peer.latched:
                    dest = &peer.latch
                elif peer.haveExpected:
                    dest = &peer.expected
            n = 0
            for i in range(r):
                h = &self.rmm[i].msg_hdr
                length = self.rmm[i].msg_len
                p = <uint8_t *>self.riov[i].iov_base
                if (length < 8 or (p[0] & 0xC0) != 0x80 or (h.msg_flags & MSG_TRUNC)
                        or h.msg_namelen != leg.addrlen
                        or self.rsrc[i].v4.sin_family != leg.family):
                    leg.droppedMalformed += 1
                    continue
                # on an RTP port, payload types 72-76 are RTCP (rtcp-mux, RFC 5761)
                isRtp = not leg.rtcp and not (72 <= (p[1] & 0x7F) <= 76)
                if isRtp and length < 12:
                    leg.droppedMalformed += 1
                    continue
                if leg.latched:
                    if not sameAddress(leg.family, &leg.latch, &self.rsrc[i]):
                        leg.droppedForeign += 1
                        continue
                else:
                    leg.latch = self.rsrc[i]
                    leg.latched = 1
                leg.packets += 1
                leg.bytes += length
                if isRtp:
                    rtpUpdate(&leg.rtp, (p[2] << 8) | p[3],
                              (<uint32_t>p[4] << 24) | (<uint32_t>p[5] << 16) | (<uint32_t>p[6] << 8) | p[7],
                              (<uint32_t>p[8] << 24) | (<uint32_t>p[9] << 16) | (<uint32_t>p[10] << 8) | p[11],
                              <uint32_t><uint64_t>(<double>now * leg.scale))
                if dest == NULL:
                    leg.droppedNoRoute += 1
                    continue
                self.siov[n].iov_base = p
                self.siov[n].iov_len = length
                self.smm[n].msg_hdr.msg_name = dest
                self.smm[n].msg_hdr.msg_namelen = destlen
                n += 1
            off = 0
            while off < n:
                s = sendmmsg(peer.fd, self.smm + off, n - off, 0)
                if s < 0:
                    if errno == EINTR:
                        continue
                    leg.droppedSendError += 1
                    off += 1
                    continue
                off += s
                leg.forwarded += s
            if r < BATCH:
                return

    cdef int pollOnce(self, int timeout) noexcept nogil:
        """
        One epoll round: wait up to C{timeout} ms, handle what is ready.
        @return: the number of ready descriptors (-1 on error).
        """
        cdef epoll_event evs[EVENTS]
        cdef int n, i
        cdef uint64_t slot
        cdef uint64_t junk
        n = epoll_wait(self.epfd, evs, EVENTS, timeout)
        if n <= 0:
            return n
        self.wakeups += 1
        for i in range(n):
            slot = evs[i].data.u64
            if slot == WAKEUP:
                read(self.wakefd, &junk, 8)
                continue
            pthread_mutex_lock(&self.lock)
            if slot < <uint64_t>self.nslots and self.legs[slot].active:
                self.handle(<int>slot)
            pthread_mutex_unlock(&self.lock)
        return n

    def run(self):
        """
        The thread's body: loop with the GIL released until L{stop}.
        """
        with nogil:
            while not self.stopping:
                if self.pollOnce(1000) < 0 and errno != EINTR:
                    break

    def poll(self, int timeout=0):
        """
        One round in the calling thread (the reactor's, when not threaded).
        """
        with nogil:
            self.pollOnce(timeout)

    def fileno(self):
        """
        @return: the epoll descriptor, readable when a relay socket is.
        """
        return self.epfd

    # -- commands -----------------------------------------------------------

    def start(self):
        import threading
        if self.threaded and self.thread is None:
            self.stopping = 0
            self.thread = threading.Thread(target=self.run, name="cgpro-media-relay", daemon=True)
            self.thread.start()

    def stop(self):
        cdef uint64_t one = 1
        cdef int slot
        if self.thread is not None:
            self.stopping = 1
            write(self.wakefd, &one, 8)
            self.thread.join()
            self.thread = None
        for slot in range(self.nslots):
            if self.legs[slot].active:
                self.removeSocket(slot)

    cdef Leg *legAt(self, int slot) except NULL:
        if not 0 <= slot < self.nslots:
            raise IndexError("media relay: slot %d out of range" % (slot,))
        return &self.legs[slot]

    def addSocket(self, int slot, sock, int peerSlot, rtcp, clockRate):
        cdef Leg *leg = self.legAt(slot)
        cdef epoll_event ev
        cdef int fd = sock.fileno()
        cdef int family = sock.family
        cdef int r
        if family != AF_INET and family != AF_INET6:
            raise ValueError("media relay: not an IPv4 or IPv6 socket: %r" % (sock,))
        with nogil:
            pthread_mutex_lock(&self.lock)
        memset(leg, 0, sizeof(Leg))
        leg.fd = fd
        leg.family = family
        leg.addrlen = sizeof(sockaddr_in6) if family == AF_INET6 else sizeof(sockaddr_in)
        leg.peer = peerSlot
        leg.rtcp = 1 if rtcp else 0
        leg.scale = clockRate / 1e9
        leg.rtp.badSeq = 0x10001
        leg.active = 1
        ev.events = EPOLLIN
        ev.data.u64 = slot
        r = epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev)
        if r < 0:
            leg.active = 0
        pthread_mutex_unlock(&self.lock)
        if r < 0:
            raise OSError(errno, "media relay: epoll_ctl add")

    def setRemote(self, int slot, host, int port):
        cdef Leg *leg = self.legAt(slot)
        cdef Addr a
        cdef int r
        memset(&a, 0, sizeof(a))
        encoded = host.encode("ascii")
        if leg.family == AF_INET6:
            a.v6.sin6_family = AF_INET6
            a.v6.sin6_port = htons(port)
            r = inet_pton(AF_INET6, encoded, &a.v6.sin6_addr)
        else:
            a.v4.sin_family = AF_INET
            a.v4.sin_port = htons(port)
            r = inet_pton(AF_INET, encoded, &a.v4.sin_addr)
        if r != 1:
            raise ValueError("media relay: not an IPv%d address: %r"
                             % (6 if leg.family == AF_INET6 else 4, host))
        with nogil:
            pthread_mutex_lock(&self.lock)
        leg.expected = a
        leg.haveExpected = 1
        leg.latched = 0
        pthread_mutex_unlock(&self.lock)

    def removeSocket(self, int slot):
        cdef Leg *leg = self.legAt(slot)
        with nogil:
            pthread_mutex_lock(&self.lock)
        if leg.active:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, leg.fd, NULL)
            leg.active = 0
        pthread_mutex_unlock(&self.lock)

    def packetCounts(self):
        """
        @return: every slot's valid packet count (a C{memoryview} of
            unsigned 64-bit integers indexed by slot), copied in one go.
        """
        cdef bytearray out = bytearray(self.nslots * 8)
        cdef uint64_t *dst = <uint64_t *><char *>out
        cdef int i
        with nogil:
            pthread_mutex_lock(&self.lock)
            for i in range(self.nslots):
                dst[i] = self.legs[i].packets
            pthread_mutex_unlock(&self.lock)
        return memoryview(out).cast("Q")

    def counters(self, int slot):
        cdef Leg *leg = self.legAt(slot)
        cdef Leg copy
        with nogil:
            pthread_mutex_lock(&self.lock)
            copy = leg[0]
            pthread_mutex_unlock(&self.lock)
        return {
            "packets": copy.packets, "bytes": copy.bytes, "forwarded": copy.forwarded,
            "droppedForeign": copy.droppedForeign, "droppedMalformed": copy.droppedMalformed,
            "droppedNoRoute": copy.droppedNoRoute, "droppedSendError": copy.droppedSendError,
            "ssrc": copy.rtp.ssrc, "lost": rtpLost(&copy.rtp), "jitter": copy.rtp.jitter,
            "remote": addressTuple(copy.family, &copy.latch) if copy.latched else None,
        }


@implementer(IRelayEngine)
class CEngine(_Loop):
    """
    L{IRelayEngine} in C.  The loop runs in a thread of its own
    (C{threaded=True}: L{start} starts it) or in the reactor's thread, from
    L{poll}, when the reactor finds L{fileno} readable.
    """

    name = "c"
