/*
 * The load generator of the benchmark's connrate scenario, in C: connect, the
 * WebSocket opening handshake, the closing handshake, close; CONCURRENCY
 * connections in flight at a time, on one epoll loop.
 *
 *     ws_connrate PORT CONCURRENCY WARMUP DURATION ws|tcp [SERVER_PID]
 *
 * bench/loadgen.py builds it (bench/native: cc -O2, cached) and runs it for
 * connrate in place of picows' client, which took a whole core for about 5,600
 * connections a second whatever the server: the figure was the client's. It
 * connects to 127.0.0.1 only and does for each connection what
 * bench/ws_picows.py's ws_open + ws_close have the server do:
 *
 *   ws:  GET / with picows' headers (Host, Upgrade, Connection, version 13 and
 *        a fixed 16-byte key; no extensions), a 101 with the right
 *        Sec-WebSocket-Accept, then a masked close frame with code 1000, the
 *        server's close frame, the server's FIN, and close().
 *   tcp: one byte there, one byte back, close(): loadgen.py's tcp_once, against
 *        bench/servers/tcp_echo.py.
 *
 * Completions are counted over DURATION seconds after WARMUP (the window starts
 * once one connection has completed, and stretches by up to MAX_STRETCH seconds
 * until it holds MIN_COUNT, as loadgen.py's measure() does); then no new
 * connection starts, those in flight finish, and one JSON line goes to stdout:
 *
 *   {"count": N, "elapsed": s, "rate": N/s, "cpu": c, "busy": c, "polling": true, "server_cpu": c}
 *
 * cpu is this process's user + system time over the window (getrusage) per
 * second of it, 1.0 being a whole core; server_cpu is SERVER_PID's from
 * /proc/PID/stat (0 without one). Anything unexpected (connection refused, a
 * status other than 101, a wrong accept, a reset, an early close, a connection
 * taking CONN_TIMEOUT seconds) ends the program with a message on stderr and
 * exit status 1.
 *
 * Polling. With 8 connections in flight neither side is busy all the time, and
 * on a virtual machine a core that goes idle takes tens of microseconds to wake
 * (a halt, then an interrupt through the host): a generator that slept in
 * epoll_wait() between events spent most of each connection being woken, and
 * measured that rather than the server (picows' server idled at 0.4 of a core).
 * So on a machine with two cores or more it polls (epoll_wait with no timeout)
 * on the core the runner gives it alone; then cpu is about 1.0 whatever the
 * load, and busy is cpu without the CPU time (CLOCK_THREAD_CPUTIME_ID, not wall
 * time: a poller that was preempted wasn't busy) spent in polls that found
 * nothing: the share of the core the connections took, what says whether the
 * generator was the limit. On one core it sleeps in epoll_wait(), and busy is cpu.
 *
 * TIME_WAIT. At 10,000-20,000 connections a second the 28,000 ephemeral ports
 * of a default Linux come round every couple of seconds, so who holds the
 * TIME_WAIT matters. ws: the client closes only once the server's FIN is in
 * (RFC 6455 7.1.1: the server closes the TCP connection first), so the TIME_WAIT
 * is the server's and the client's port is free again at once; a later SYN from
 * the same port meets the server's TIME_WAIT, which accepts it (TCP timestamps,
 * on by default). tcp: the client closes first, as tcp_once does (the TCP echo
 * never closes), so the TIME_WAIT is the client's, and connect() reuses such a
 * loopback port after a second (net.ipv4.tcp_tw_reuse = 2, Linux's default).
 * Not SO_LINGER 0: a reset instead of a FIN would send the server down its error
 * path instead of its EOF, and change what is measured; not bind() to other
 * 127.x addresses either: the defaults hold at these rates. Should connect() find
 * no port (EADDRNOTAVAIL), the error says so.
 *
 * Bounded memory: one read buffer; per connection (at most MAX_CONCURRENCY),
 * HEAD_CAP bytes of response head and 14 of a frame header; frame payloads are
 * skipped, never held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "ws_connrate"
#define MAX_CONCURRENCY 10000
#define READ_CAP 4096
#define CONN_TIMEOUT 5.0               /* seconds one connection may take, connect to close */

#include "ws_common.h"

enum { CONNECTING, UPGRADING, CLOSING, AWAIT_FIN, ECHOING };

static const char *const waiting_for[] = {
    [CONNECTING] = "the TCP connection",
    [UPGRADING] = "the 101 response",
    [CLOSING] = "the server's close frame",
    [AWAIT_FIN] = "the server to close the TCP connection after its close frame",
    [ECHOING] = "the byte echoed back",
};

struct conn {
    int fd;                            /* -1 between connections */
    int state;
    double started;
    size_t head_len;
    unsigned char fh[14];              /* a frame header split across reads */
    size_t fh_len;
    int in_payload;
    unsigned char op;
    uint64_t left;                     /* payload bytes of the frame still to come */
    char head[HEAD_CAP + 1];
};

static int ws, stopping, inflight;
/* A close frame, masked: FIN + opcode 8, mask bit + length 2, the key, 1000 (0x03e8) masked with it. */
static unsigned char close_frame[8];
static unsigned char in_buf[READ_CAP];
static unsigned long long completed;

/* Sends all of it or fails (a fresh socket's buffer holds these few bytes). 1: not connected yet. */
static int send_all(struct conn *c, const void *data, size_t len, const char *what)
{
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n == (ssize_t)len)
        return 0;
    if (n < 0 && (errno == EAGAIN || errno == ENOTCONN) && c->state == CONNECTING)
        return 1;
    if (n < 0)
        fail(what, errno);
    fail("a short write on a new connection", 0);
    return -1;
}

static void start(struct conn *c)
{
    int fd = c->fd = connect_to_server();
    c->state = CONNECTING;
    c->started = now();
    c->head_len = c->fh_len = 0;
    c->in_payload = 0;
    /* On loopback the TCP handshake is usually over by now: send at once, else once writable. */
    uint32_t events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    if (send_all(c, request, request_len, "connect") == 0)
        c->state = ws ? UPGRADING : ECHOING;
    else
        events |= EPOLLOUT;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail("epoll_ctl", errno);
    inflight++;
}

static void finish(struct conn *c)
{
    close(c->fd);                      /* and out of the epoll set */
    c->fd = -1;
    inflight--;
    completed++;
    if (!stopping)
        start(c);
}

/* The server's frames: skipped until its close frame is whole. */
static void frames(struct conn *c, const unsigned char *p, size_t n)
{
    while (n && c->state == CLOSING) {
        if (!c->in_payload) {
            if (!gather_header(c->fh, &c->fh_len, &p, &n))
                continue;
            c->op = c->fh[0] & 0x0f;
            c->left = payload_length(c->fh);
            c->in_payload = 1;
            c->fh_len = 0;
        }
        size_t take = c->left < n ? (size_t)c->left : n;
        c->left -= take;
        p += take;
        n -= take;
        if (!c->left) {
            c->in_payload = 0;
            if (c->op == 0x8)
                c->state = AWAIT_FIN;  /* anything after it is ignored */
        }
    }
}

/* n bytes from the server. Returns 1 when the connection is done with. */
static int feed(struct conn *c, const unsigned char *p, size_t n)
{
    switch (c->state) {
    case ECHOING:
        return 1;
    case UPGRADING: {
        size_t take, head = gather_head(c->head, &c->head_len, p, n, &take);
        if (!head)
            return 0;
        c->state = CLOSING;
        send_all(c, close_frame, sizeof close_frame, "sending the close frame");
        frames(c, (unsigned char *)c->head + head, c->head_len - head);   /* frames may follow the head */
        frames(c, p + take, n - take);
        return 0;
    }
    case CLOSING:
        frames(c, p, n);
        return 0;
    default:                           /* AWAIT_FIN: nothing should come; ignored */
        return 0;
    }
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->state == CONNECTING) {
        if (send_all(c, request, request_len, "connect"))
            return;                    /* still connecting */
        c->state = ws ? UPGRADING : ECHOING;
    }
    for (;;) {
        ssize_t n = recv(c->fd, in_buf, READ_CAP, 0);
        if (n > 0) {
            if (feed(c, in_buf, (size_t)n)) {
                finish(c);
                return;
            }
            if (n == READ_CAP)
                continue;
            if (!(events & (EPOLLRDHUP | EPOLLHUP)))
                return;                /* all read: what comes next is a new event */
            if (c->state == AWAIT_FIN) {
                finish(c);             /* the FIN was in before this read, so all before it is read */
                return;
            }
            continue;                  /* the next recv() says what the server closed before */
        }
        if (n == 0) {
            if (c->state == AWAIT_FIN) {
                finish(c);
                return;
            }
            char what[160];
            snprintf(what, sizeof what, "the server closed the connection before %s", waiting_for[c->state]);
            fail(what, 0);
        }
        if (errno == EAGAIN)
            return;
        if (errno != EINTR) {
            char what[160];
            snprintf(what, sizeof what, "waiting for %s", waiting_for[c->state]);
            fail(what, errno);
        }
    }
}

int main(int argc, char **argv)
{
    if ((argc != 6 && argc != 7) || (strcmp(argv[5], "ws") && strcmp(argv[5], "tcp"))) {
        fprintf(stderr, "usage: %s PORT CONCURRENCY WARMUP DURATION ws|tcp [SERVER_PID]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int concurrency = atoi(argv[2]);
    double warmup = arg_seconds(argv[3], "WARMUP", 0), duration = arg_seconds(argv[4], "DURATION", 0.001);
    ws = !strcmp(argv[5], "ws");
    int server_pid = argc == 7 ? atoi(argv[6]) : 0;
    if (port < 1 || port > 65535 || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
        fprintf(stderr, "ws_connrate: PORT must be 1-65535 and CONCURRENCY 1-%d\n", MAX_CONCURRENCY);
        return 2;
    }
    setup(ws);
    close_frame[0] = 0x88;
    close_frame[1] = 0x80 | 2;
    memcpy(close_frame + 2, mask_key, 4);
    close_frame[6] = 0x03 ^ mask_key[0];
    close_frame[7] = 0xe8 ^ mask_key[1];

    struct meter m;
    struct conn *conns = meter_init(&m, server_pid, (size_t)concurrency, sizeof(struct conn));
    double begin = m.begin;
    for (int i = 0; i < concurrency; i++)
        start(&conns[i]);

    enum { WARMUP, MEASURING, DRAINING } phase = WARMUP;
    double checked = begin;
    struct epoll_event events[256];
    while (phase != DRAINING || inflight) {
        double t = now();
        if (phase == WARMUP && t >= begin + warmup && completed) {
            phase = MEASURING;         /* after the warm-up, once one connection has gone all the way */
            meter_start(&m, t, completed);
        } else if (phase == MEASURING && meter_stop(&m, t, completed, duration)) {
            phase = DRAINING;
            stopping = 1;
        }
        if (t - checked >= 0.1) {      /* ten times a second: a connection stuck, the runner gone, too long */
            checked = t;
            for (int i = 0; i < concurrency; i++) {
                if (conns[i].fd >= 0 && t - conns[i].started > CONN_TIMEOUT) {
                    char what[160];
                    snprintf(what, sizeof what, "waited %.0f s for %s", CONN_TIMEOUT, waiting_for[conns[i].state]);
                    fail(what, 0);
                }
            }
            if (phase == WARMUP && !completed && t > begin + warmup + MAX_STRETCH)
                fail("no connection completed", 0);
            meter_check(&m, t);
        }
        /* Unless polling: sleep until the next event, or the window's next edge, or a check. */
        double next = phase == WARMUP ? begin + warmup : phase == MEASURING ? m.t0 + duration : t + 0.1;
        int n = meter_wait(&m, events, 256, t, next);
        for (int i = 0; i < n; i++)
            on_event(events[i].data.ptr, events[i].events);
    }
    meter_report(&m);
    free(conns);
    return 0;
}
