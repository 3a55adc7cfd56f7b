/*
 * The load generator of the benchmark's echo scenarios (ping-pong, pipelined,
 * 100 connections), in C: CONNS WebSocket connections on one epoll loop, each
 * keeping WINDOW binary messages of SIZE bytes in flight.
 *
 *     ws_echo_load PORT SIZE WINDOW CONNS WARMUP DURATION ws|tcp [SERVER_PID]
 *
 * bench/loadgen.py builds it (bench/native: cc -O2, cached) and runs it for the
 * echo operation without compression, in place of picows' client: in the
 * pipelined scenarios that client took a whole core before the fastest servers
 * did (the C reference server reached about 4x picows' server against it), so
 * the figure was the client's. It connects to 127.0.0.1 only and, per
 * connection:
 *
 *   - sends GET / with the same headers as ws_connrate.c (version 13, a fixed
 *     key, no extensions) and checks the 101 and its Sec-WebSocket-Accept;
 *   - sends WINDOW masked binary frames of SIZE bytes (one frame built and
 *     masked once, sent again and again), then one more for each message that
 *     comes back whole: those of one read go out in one writev();
 *   - reads the server's frames as a stream, payloads skipped, never held: a
 *     data frame with FIN ends a message; a ping is answered (between two of
 *     its own frames); a close frame, or any protocol surprise, is an error.
 *
 * tcp: the same without WebSocket, against bench/servers/tcp_echo.py (the
 * limit): SIZE bytes out, and each SIZE bytes back count as a message.
 *
 * Messages back are counted over DURATION seconds after WARMUP, once a whole
 * window per connection has come back (as loadgen.py's measure() does; the
 * window stretches by up to MAX_STRETCH seconds until it holds MIN_COUNT).
 * Then one JSON line goes to stdout, as ws_connrate.c's:
 *
 *   {"count": N, "elapsed": s, "rate": N/s, "cpu": c, "busy": c, "polling": true, "server_cpu": c}
 *
 * and every connection is reset (SO_LINGER 0), as loadgen.py closes its own.
 * Anything unexpected ends the program with a message on stderr and status 1.
 * On two cores or more it polls epoll rather than sleep (see ws_connrate.c);
 * busy leaves that polling out.
 *
 * Bounded memory: one frame of SIZE bytes (at most MAX_SIZE), one read buffer,
 * and per connection a response head of HEAD_CAP bytes and a frame header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PROG "ws_echo_load"
#define MAX_CONNS 10000
#define MAX_SIZE (64u << 20)           /* the largest message: 64 MiB */
#define MAX_WINDOW 100000
#define READ_CAP (1u << 20)
#define BATCH 64                       /* frames per writev() */
#define OPEN_TIMEOUT 10.0              /* seconds for every connection to be open */
#define STALL_TIMEOUT 10.0             /* seconds without a message back, once measuring */

#include "ws_common.h"

enum { CONNECTING, UPGRADING, OPEN };

struct conn {
    int fd;
    int state;
    size_t head_len;
    unsigned long long owed;           /* frames to send */
    size_t sent;                       /* bytes of the frame being sent */
    unsigned char fh[14];              /* a frame header split across reads */
    size_t fh_len;
    int in_payload;
    unsigned char op, fin;
    uint64_t left;                     /* payload bytes of the frame still to come */
    unsigned long long received;       /* tcp: bytes back */
    unsigned char ping[125];           /* a ping's payload while its pong is owed */
    size_t ping_len;
    int pong_owed;
    char head[HEAD_CAP + 1];
};

static int ws, open_conns;
static unsigned window;
static size_t size;
static unsigned char *frame;           /* header, mask key, masked payload */
static size_t frame_len;
static unsigned char in_buf[READ_CAP];
static unsigned long long completed;

/* Writes what is owed (a pong first, at a frame boundary); keeps the rest for EPOLLOUT. */
static void flush(struct conn *c)
{
    while (c->pong_owed || c->owed) {
        if (c->pong_owed && c->sent == 0) {
            unsigned char pong[6 + 125];
            pong[0] = 0x8a;
            pong[1] = (unsigned char)(0x80 | c->ping_len);
            memcpy(pong + 2, mask_key, 4);
            for (size_t i = 0; i < c->ping_len; i++)
                pong[6 + i] = c->ping[i] ^ mask_key[i % 4];
            ssize_t n = send(c->fd, pong, 6 + c->ping_len, MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN)
                return;
            if (n != (ssize_t)(6 + c->ping_len))
                fail("sending a pong", n < 0 ? errno : 0);
            c->pong_owed = 0;
            continue;
        }
        struct iovec iov[BATCH];
        int count = 0;
        iov[count].iov_base = frame + c->sent;
        iov[count++].iov_len = frame_len - c->sent;
        for (unsigned long long i = 1; i < c->owed && count < BATCH; i++) {
            iov[count].iov_base = frame;
            iov[count++].iov_len = frame_len;
        }
        ssize_t n = writev(c->fd, iov, count);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            if (errno == EINTR)
                continue;
            fail("sending a message", errno);
        }
        size_t done = (size_t)n;
        if (done < frame_len - c->sent) {
            c->sent += done;
            return;                    /* the socket is full: EPOLLOUT says when to go on */
        }
        done -= frame_len - c->sent;
        c->owed--;
        c->owed -= done / frame_len;
        c->sent = done % frame_len;
        if (c->sent)
            return;
    }
}

/* The server's frames, as they come; payloads skipped. */
static void frames(struct conn *c, const unsigned char *p, size_t n)
{
    while (n) {
        if (!c->in_payload) {
            if (!gather_header(c->fh, &c->fh_len, &p, &n))
                continue;
            if (c->fh[0] & 0x70)
                fail("a frame with RSV bits from the server (no extension was agreed)", 0);
            c->op = c->fh[0] & 0x0f;
            c->fin = c->fh[0] >> 7;
            c->left = payload_length(c->fh);
            if (c->op == 0x8)
                fail("the server sent a close frame", 0);
            if (c->op == 0x9 && c->left > 125)
                fail("a ping of more than 125 bytes", 0);
            if (c->op == 0x9)
                c->ping_len = 0;
            c->in_payload = 1;
            c->fh_len = 0;
        }
        size_t take = c->left < n ? (size_t)c->left : n;
        if (c->op == 0x9) {
            memcpy(c->ping + c->ping_len, p, take);
            c->ping_len += take;
        }
        c->left -= take;
        p += take;
        n -= take;
        if (!c->left) {
            c->in_payload = 0;
            if (c->op == 0x9)
                c->pong_owed = 1;
            else if (c->fin && c->op != 0xa) {
                completed++;           /* a whole message: send the next */
                c->owed++;
            }
        }
    }
}

/* n bytes from the server. */
static void feed(struct conn *c, const unsigned char *p, size_t n)
{
    if (!ws) {                         /* tcp: whole messages are whole multiples of SIZE */
        unsigned long long before = c->received / size;
        c->received += n;
        unsigned long long whole = c->received / size - before;
        completed += whole;
        c->owed += whole;
        return;
    }
    if (c->state == OPEN) {
        frames(c, p, n);
        return;
    }
    size_t take, head = gather_head(c->head, &c->head_len, p, n, &take);
    if (!head)
        return;
    c->state = OPEN;
    open_conns++;
    frames(c, (unsigned char *)c->head + head, c->head_len - head);   /* frames may follow the head */
    frames(c, p + take, n - take);
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->state == CONNECTING && !ws) {
        int err = 0;
        socklen_t len = sizeof err;
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
            fail("connect", err ? err : errno);
        c->state = OPEN;
        open_conns++;
    }
    if (c->state == CONNECTING) {
        ssize_t n = send(c->fd, request, request_len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == ENOTCONN))
            return;                    /* still connecting */
        if (n != (ssize_t)request_len)
            fail("sending the upgrade request", n < 0 ? errno : 0);
        c->state = UPGRADING;
    }
    for (;;) {
        ssize_t n = recv(c->fd, in_buf, READ_CAP, 0);
        if (n > 0) {
            feed(c, in_buf, (size_t)n);
            if ((size_t)n == READ_CAP)
                continue;
            break;
        }
        if (n == 0)
            fail(c->state == OPEN ? "the server closed the connection" : "the server closed the connection before the 101", 0);
        if (errno == EAGAIN)
            break;
        if (errno != EINTR)
            fail(c->state == OPEN ? "reading messages" : "waiting for the 101", errno);
    }
    if (c->state == OPEN && (c->owed || c->pong_owed))
        flush(c);
}

static void start(struct conn *c)
{
    int fd = c->fd = connect_to_server();
    c->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail("epoll_ctl", errno);
}

static void build_frame(void)
{
    if (!ws) {                         /* tcp: the payload alone, as is */
        frame_len = size;
        frame = malloc(size);
        if (!frame)
            fail("allocating the message", errno);
        for (size_t i = 0; i < size; i++)
            frame[i] = (unsigned char)i;
        return;
    }
    size_t head = size < 126 ? 2 : size < 65536 ? 4 : 10;
    frame_len = head + 4 + size;
    frame = malloc(frame_len);
    if (!frame)
        fail("allocating the message", errno);
    frame[0] = 0x82;                   /* FIN, binary */
    if (size < 126)
        frame[1] = (unsigned char)(0x80 | size);
    else if (size < 65536) {
        frame[1] = 0x80 | 126;
        frame[2] = (unsigned char)(size >> 8);
        frame[3] = (unsigned char)size;
    } else {
        frame[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            frame[2 + i] = (unsigned char)((uint64_t)size >> (56 - 8 * i));
    }
    memcpy(frame + head, mask_key, 4);
    for (size_t i = 0; i < size; i++)  /* the load generator's pattern: bytes 0-255, over and over */
        frame[head + 4 + i] = (unsigned char)i ^ mask_key[i % 4];
}

static long arg_int(const char *text, const char *name, long min, long max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < min || v > max) {
        fprintf(stderr, PROG ": %s must be an integer from %ld to %ld\n", name, min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if ((argc != 8 && argc != 9) || (strcmp(argv[7], "ws") && strcmp(argv[7], "tcp"))) {
        fprintf(stderr, "usage: %s PORT SIZE WINDOW CONNS WARMUP DURATION ws|tcp [SERVER_PID]\n", argv[0]);
        return 2;
    }
    ws = !strcmp(argv[7], "ws");
    port = (int)arg_int(argv[1], "PORT", 1, 65535);
    size = (size_t)arg_int(argv[2], "SIZE", ws ? 0 : 1, MAX_SIZE);
    window = (unsigned)arg_int(argv[3], "WINDOW", 1, MAX_WINDOW);
    int nconns = (int)arg_int(argv[4], "CONNS", 1, MAX_CONNS);
    double warmup = arg_seconds(argv[5], "WARMUP", 0), duration = arg_seconds(argv[6], "DURATION", 0.001);
    int server_pid = argc == 9 ? (int)arg_int(argv[8], "SERVER_PID", 0, INT_MAX) : 0;
    setup(ws);
    build_frame();

    struct meter m;
    struct conn *conns = meter_init(&m, server_pid, (size_t)nconns, sizeof(struct conn));
    double begin = m.begin;
    for (int i = 0; i < nconns; i++)
        start(&conns[i]);

    enum { OPENING, WARMUP, FILLING, MEASURING } phase = OPENING;
    double checked = begin, warm_from = 0, last_seen = 0;
    unsigned long long seen = 0;
    struct epoll_event events[256];
    for (;;) {                         /* until meter_stop() says the window is over */
        double t = now();
        if (phase == OPENING && open_conns == nconns) {
            phase = WARMUP;            /* every connection open: the first window goes out at once */
            warm_from = t;
            for (int i = 0; i < nconns; i++) {
                conns[i].owed = window;
                flush(&conns[i]);
            }
        }
        if (phase == WARMUP && t >= warm_from + warmup)
            phase = FILLING;           /* then steady state, once a whole window per connection is back */
        if (phase == FILLING &&
            (completed >= (unsigned long long)window * (unsigned)nconns || t >= warm_from + warmup + MAX_STRETCH)) {
            phase = MEASURING;
            meter_start(&m, t, completed);
        } else if (phase == MEASURING && meter_stop(&m, t, completed, duration)) {
            break;
        }
        if (completed != seen) {
            seen = completed;
            last_seen = t;
        }
        if (t - checked >= 0.1) {      /* ten times a second: stuck, the runner gone, too long */
            checked = t;
            if (phase == OPENING && t > begin + OPEN_TIMEOUT) {
                char what[96];
                snprintf(what, sizeof what, "%d of %d connections open after %.0f s", open_conns, nconns, OPEN_TIMEOUT);
                fail(what, 0);
            }
            if (phase >= FILLING && t - (last_seen > warm_from ? last_seen : warm_from) > STALL_TIMEOUT)
                fail("no message came back for 10 s", 0);
            meter_check(&m, t);
        }
        /* Unless polling: sleep until the next event, or the window's edge, or a check. */
        double next = phase == MEASURING ? m.t0 + duration : phase == WARMUP ? warm_from + warmup : t + 0.1;
        int n = meter_wait(&m, events, 256, t, next);
        for (int i = 0; i < n; i++)
            on_event(events[i].data.ptr, events[i].events);
    }
    meter_report(&m);
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < nconns; i++) {  /* a reset each: no TIME_WAIT left behind */
        setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(conns[i].fd);
    }
    free(conns);
    free(frame);
    return 0;
}
