/*
 * The machine's limit for the benchmark's server scenarios: a WebSocket echo
 * server in C on one epoll loop, with nothing between the socket and the frames.
 *
 *     ws_echo PORT echo|broadcast
 *
 * bench/native.py builds it (cc -O2) into a cache directory; bench/servers/c_epoll.py
 * runs it. It listens on 127.0.0.1 only and speaks as much of RFC 6455 as the
 * load generator needs: the opening handshake (SHA-1 and base64 are below),
 * unmasking, data frames echoed as they arrive (streamed: a 1 MiB message is
 * never held whole), ping answered by pong, close echoed and then the TCP
 * connection closed. No extensions: permessage-deflate is never agreed.
 *
 * broadcast: each whole data message (at most MSG_CAP bytes) goes to every open
 * connection, framed once; a connection whose unsent output is past PENDING_CAP
 * skips it, as the Python servers' broadcast does. What a connection is sent
 * during one round of events is corked: one send() per connection and round.
 *
 * Bounded memory: one read buffer for all connections; per connection, at most
 * 14 bytes of a frame header split across reads, REQ_CAP bytes of handshake,
 * and what the socket didn't take of its output (it stops reading until that is
 * written: flow control, like every server in the benchmark).
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

#define READ_CAP (256 * 1024)
#define OUT_CAP (READ_CAP + 64)        /* a read's output: at most its input plus one header */
#define REQ_CAP 4096                   /* the HTTP upgrade request */
#define MSG_CAP (64 * 1024)            /* broadcast: the largest message fanned out */
#define PENDING_CAP (1024 * 1024)      /* broadcast: unsent output past which a connection skips one */
#define MAX_PAYLOAD (16ULL * 1024 * 1024)
#define BACKLOG 2048
#define MAX_SECONDS 600                /* never outlive the benchmark run */

struct conn {
    int fd;
    int slot;                          /* index in conns[] */
    int upgraded, closing, dead;
    uint32_t events;                   /* what epoll watches: EPOLLIN, or EPOLLOUT while output waits */
    char *req;                         /* the handshake so far, freed once upgraded */
    size_t req_len;
    unsigned char hdr[14];             /* a frame header split across reads */
    size_t hdr_len;
    int in_frame;                      /* between a header and the end of its payload */
    unsigned char op, fin, mask[4];
    unsigned mask_pos;
    uint64_t left;                     /* payload bytes of the frame still to come */
    int action;                        /* what its payload is for: ECHO, GATHER or DROP */
    unsigned char *pending;            /* output the socket didn't take */
    size_t pending_off, pending_len;
    unsigned char *msg;                /* broadcast: the message being gathered */
    size_t msg_len;
    unsigned char msg_op;
    unsigned char *cork;               /* broadcast: what this round of events sends it, in one send() */
    size_t cork_len, cork_cap;
    struct conn *next_dead, *next_corked;
};

enum { ECHO, GATHER, DROP };

static int ep, broadcast;
static struct conn **conns;            /* the open connections, for broadcast */
static int nconns, conns_cap;
static struct conn *dead_list, *corked_list;
static unsigned char in_buf[READ_CAP];
static unsigned char out_buf[OUT_CAP];
static size_t out_len;

/* ------------------------------------------------------------------ SHA-1 (FIPS 180-4) and base64 */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* SHA-1 of a short input (the key and the GUID: under 200 bytes). */
static void sha1(const unsigned char *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    unsigned char block[64];
    size_t i = 0;
    for (; i + 64 <= len; i += 64)
        sha1_block(h, data + i);
    size_t rest = len - i;
    memset(block, 0, 64);
    memcpy(block, data + i, rest);
    block[rest] = 0x80;
    if (rest >= 56) {
        sha1_block(h, block);
        memset(block, 0, 64);
    }
    uint64_t bits = (uint64_t)len * 8;
    for (int j = 0; j < 8; j++)
        block[63 - j] = (unsigned char)(bits >> (8 * j));
    sha1_block(h, block);
    for (int j = 0; j < 20; j++)
        out[j] = (unsigned char)(h[j / 4] >> (24 - 8 * (j % 4)));
}

static void base64(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = digits[v >> 18];
        out[o++] = digits[(v >> 12) & 63];
        out[o++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? digits[v & 63] : '=';
    }
    out[o] = 0;
}

/* ------------------------------------------------------------------ connections and output */

static void kill_conn(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->next_dead = dead_list;          /* freed after this batch of events: later ones may name it */
    dead_list = c;
}

static void reap(void)
{
    while (dead_list) {
        struct conn *c = dead_list;
        dead_list = c->next_dead;
        close(c->fd);
        conns[c->slot] = conns[--nconns];
        conns[c->slot]->slot = c->slot;
        free(c->req);
        free(c->pending);
        free(c->msg);
        free(c->cork);
        free(c);
    }
}

static void watch(struct conn *c)
{
    uint32_t want = c->pending_len > c->pending_off ? EPOLLOUT : EPOLLIN;
    if (c->dead || want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    c->events = want;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        kill_conn(c);
}

/* Write now what the socket takes; keep the rest. A droppable message (a broadcast)
 * is skipped instead when the connection already has PENDING_CAP bytes waiting. */
static void send_to(struct conn *c, const unsigned char *data, size_t len, int droppable)
{
    if (c->dead || !len)
        return;
    size_t waiting = c->pending_len - c->pending_off;
    if (!waiting) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            kill_conn(c);
            return;
        }
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
        if (!len)
            return;
    } else if (droppable && waiting + len > PENDING_CAP) {
        return;
    }
    if (c->pending_off) {              /* compact, then grow to fit */
        memmove(c->pending, c->pending + c->pending_off, waiting);
        c->pending_off = 0;
        c->pending_len = waiting;
    }
    unsigned char *grown = realloc(c->pending, c->pending_len + len);
    if (!grown) {
        kill_conn(c);
        return;
    }
    c->pending = grown;
    memcpy(c->pending + c->pending_len, data, len);
    c->pending_len += len;
    watch(c);                          /* stop reading until it is written */
}

static void flush_pending(struct conn *c)
{
    while (c->pending_off < c->pending_len) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            kill_conn(c);
            return;
        }
        c->pending_off += (size_t)n;
    }
    free(c->pending);
    c->pending = NULL;
    c->pending_off = c->pending_len = 0;
    if (c->closing)
        kill_conn(c);
    else
        watch(c);
}

/* Broadcast: add to what c is sent at the end of this round of events. A droppable
 * message is skipped when c already has PENDING_CAP bytes waiting, corked or not. */
static void cork(struct conn *c, const unsigned char *data, size_t len, int droppable)
{
    if (c->dead || !len)
        return;
    size_t waiting = c->pending_len - c->pending_off + c->cork_len;
    if (droppable && waiting + len > PENDING_CAP)
        return;
    if (c->cork_len + len > c->cork_cap) {
        size_t cap = (c->cork_len + len) * 2;
        unsigned char *grown = realloc(c->cork, cap);
        if (!grown) {
            kill_conn(c);
            return;
        }
        c->cork = grown;
        c->cork_cap = cap;
    }
    if (!c->cork_len) {
        c->next_corked = corked_list;
        corked_list = c;
    }
    memcpy(c->cork + c->cork_len, data, len);
    c->cork_len += len;
}

static void uncork_all(void)
{
    while (corked_list) {
        struct conn *c = corked_list;
        corked_list = c->next_corked;
        send_to(c, c->cork, c->cork_len, 0);
        c->cork_len = 0;
        if (c->closing && c->pending_len == c->pending_off)
            kill_conn(c);
    }
}

static void flush_out(struct conn *c)
{
    if (c->cork_len)
        cork(c, out_buf, out_len, 0);  /* after what it was corked: the order of frames holds */
    else
        send_to(c, out_buf, out_len, 0);
    out_len = 0;
}

/* A server frame header (never masked) for a payload of len bytes. */
static size_t frame_header(unsigned char *h, unsigned char first, uint64_t len)
{
    h[0] = first;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

static void unmask(unsigned char *dst, const unsigned char *src, size_t n, const unsigned char mask[4], unsigned pos)
{
    unsigned char m[8];
    uint64_t m64, w;
    size_t i = 0;
    for (int j = 0; j < 8; j++)
        m[j] = mask[(pos + j) & 3];
    memcpy(&m64, m, 8);
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= m64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ m[i & 7];
}

static void fan_out(struct conn *from)
{
    static unsigned char frame[MSG_CAP + 10];
    size_t h = frame_header(frame, 0x80 | from->msg_op, from->msg_len);
    memcpy(frame + h, from->msg, from->msg_len);
    flush_out(from);                   /* what the sender was owed comes first */
    for (int i = 0; i < nconns; i++)
        if (conns[i]->upgraded && !conns[i]->closing)
            cork(conns[i], frame, h + from->msg_len, 1);
    from->msg_len = 0;
}

/* ------------------------------------------------------------------ frames */

static void end_of_frame(struct conn *c)
{
    c->in_frame = 0;
    if (c->op == 0x8)
        c->closing = 1;                /* the close was echoed: the TCP connection ends once it is written */
    else if (c->action == GATHER && c->fin)
        fan_out(c);
}

/* A whole header in c->hdr: check it, decide what its payload is for, echo the header if echoing. */
static int start_frame(struct conn *c)
{
    unsigned char b0 = c->hdr[0], b1 = c->hdr[1], len7 = b1 & 0x7f;
    size_t at = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | c->hdr[2 + i];
        at = 10;
    }
    c->op = b0 & 0x0f;
    c->fin = b0 >> 7;
    if ((b0 & 0x70) || !(b1 & 0x80) || len > MAX_PAYLOAD)
        return -1;                     /* reserved bits (no extension agreed), unmasked, or too big */
    if ((c->op & 0x8) && (len > 125 || !c->fin))
        return -1;
    memcpy(c->mask, c->hdr + at, 4);
    c->mask_pos = 0;
    c->left = len;
    c->in_frame = 1;
    if (c->op == 0xA) {                /* a pong: nothing to answer */
        c->action = DROP;
    } else if (broadcast && !(c->op & 0x8)) {
        if (c->op)
            c->msg_op = c->op;
        if (c->msg_len + len > MSG_CAP)
            return -1;
        if (!c->msg && !(c->msg = malloc(MSG_CAP)))
            return -1;
        c->action = GATHER;
    } else {                           /* data (echo), ping (pong back), close (echoed) */
        unsigned char op = c->op == 0x9 ? 0xA : c->op;
        out_len += frame_header(out_buf + out_len, (unsigned char)(c->fin << 7) | op, len);
        c->action = ECHO;
    }
    if (!len)
        end_of_frame(c);
    return 0;
}

static size_t header_size(const unsigned char *h)
{
    unsigned char len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

/* Frames from the client: n bytes of one read (or what followed the handshake). */
static void consume(struct conn *c, const unsigned char *p, size_t n)
{
    while (n && !c->closing && !c->dead) {
        if (!c->in_frame) {
            size_t need = c->hdr_len < 2 ? 2 : header_size(c->hdr);
            size_t take = need - c->hdr_len < n ? need - c->hdr_len : n;
            memcpy(c->hdr + c->hdr_len, p, take);
            c->hdr_len += take;
            p += take;
            n -= take;
            if (c->hdr_len == 2)
                continue;              /* now the full size is known */
            if (c->hdr_len == header_size(c->hdr)) {
                c->hdr_len = 0;
                if (start_frame(c) < 0) {
                    kill_conn(c);
                    return;
                }
            }
            continue;
        }
        size_t take = c->left < n ? (size_t)c->left : n;
        if (c->action == ECHO) {
            unmask(out_buf + out_len, p, take, c->mask, c->mask_pos);
            out_len += take;
        } else if (c->action == GATHER) {
            unmask(c->msg + c->msg_len, p, take, c->mask, c->mask_pos);
            c->msg_len += take;
        }
        c->mask_pos = (c->mask_pos + (unsigned)take) & 3;
        c->left -= take;
        p += take;
        n -= take;
        if (!c->left)
            end_of_frame(c);
    }
    flush_out(c);
    if (c->closing && c->pending_len == c->pending_off && !c->cork_len)
        kill_conn(c);
}

/* ------------------------------------------------------------------ the opening handshake */

static void reply(struct conn *c, const char *text)
{
    send_to(c, (const unsigned char *)text, strlen(text), 0);
}

/* An error response, then the connection ends once it is written. */
static void refuse(struct conn *c, const char *text)
{
    reply(c, text);
    c->closing = 1;
    if (c->pending_len == c->pending_off)
        kill_conn(c);
}

static void handshake(struct conn *c, const unsigned char *p, size_t n)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    if (!c->req && !(c->req = malloc(REQ_CAP + 1))) {
        kill_conn(c);
        return;
    }
    size_t take = n < REQ_CAP - c->req_len ? n : REQ_CAP - c->req_len;
    memcpy(c->req + c->req_len, p, take);
    c->req_len += take;
    c->req[c->req_len] = 0;
    char *end = strstr(c->req, "\r\n\r\n");
    if (!end) {
        if (c->req_len == REQ_CAP)
            refuse(c, "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    size_t head = (size_t)(end + 4 - c->req);
    const char *key = NULL;
    size_t key_len = 0;
    for (char *line = strstr(c->req, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18))
            continue;
        key = line + 20;
        while (*key == ' ' || *key == '\t')
            key++;
        while (key[key_len] && key[key_len] != '\r' && key[key_len] != ' ')
            key_len++;
        break;
    }
    if (strncmp(c->req, "GET ", 4) || !key || !key_len || key_len > 64) {
        refuse(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    unsigned char joined[64 + sizeof guid], digest[20];
    char accept[32], response[160];
    memcpy(joined, key, key_len);
    memcpy(joined + key_len, guid, sizeof guid - 1);
    sha1(joined, key_len + sizeof guid - 1, digest);
    base64(digest, 20, accept);
    snprintf(response, sizeof response,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    reply(c, response);
    c->upgraded = 1;
    /* Frames may follow the request in the same read: what was copied past it, then what wasn't copied. */
    char *req = c->req;
    size_t req_len = c->req_len;
    c->req = NULL;
    consume(c, (unsigned char *)req + head, req_len - head);
    free(req);
    consume(c, p + take, n - take);
}

/* ------------------------------------------------------------------ the loop */

static void on_readable(struct conn *c)
{
    ssize_t n = recv(c->fd, in_buf, READ_CAP, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        kill_conn(c);
        return;
    }
    if (n < 0)
        return;
    if (c->upgraded)
        consume(c, in_buf, (size_t)n);
    else
        handshake(c, in_buf, (size_t)n);
}

static void on_accept(int listener)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;                    /* EAGAIN: all taken; anything else: the next round */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (nconns == conns_cap) {
            struct conn **grown = realloc(conns, sizeof *conns * (size_t)(conns_cap * 2 + 64));
            if (!grown) {
                close(fd);
                continue;
            }
            conns = grown;
            conns_cap = conns_cap * 2 + 64;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->slot = nconns;
        conns[nconns++] = c;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            kill_conn(c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "echo") && strcmp(argv[2], "broadcast"))) {
        fprintf(stderr, "usage: %s PORT echo|broadcast\n", argv[0]);
        return 2;
    }
    broadcast = !strcmp(argv[2], "broadcast");
    pid_t parent = getppid();
    time_t deadline = time(NULL) + MAX_SECONDS;
    struct rlimit lim;
    if (!getrlimit(RLIMIT_NOFILE, &lim)) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, BACKLOG) < 0) {
        perror("listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    printf("READY {\"pid\": %d, \"library\": \"C epoll reference\", \"version\": \"cc %s\", \"loop\": \"epoll\"}\n",
           (int)getpid(), __VERSION__);
    fflush(stdout);
    time_t checked = 0;
    for (;;) {
        int n = epoll_wait(ep, events, 256, 500);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                on_accept(listener);
                continue;
            }
            if (c->dead)
                continue;
            if (events[i].events & EPOLLOUT)
                flush_pending(c);
            else if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
        uncork_all();
        reap();
        time_t now = time(NULL);       /* once a second: is the runner still there, is it time to go */
        if (now != checked) {
            checked = now;
            if (getppid() != parent)
                return 1;
            if (now > deadline) {
                fprintf(stderr, "benchmark process gave up after %d s\n", MAX_SECONDS);
                return 2;
            }
        }
    }
}
