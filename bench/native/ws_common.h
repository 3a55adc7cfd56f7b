/*
 * What the benchmark's C load generators share (ws_connrate.c, ws_echo_load.c):
 * connecting, the upgrade request and the check of its 101, frame headers,
 * clocks, CPU times, the run's epoll set, bounds and measuring window,
 * argument parsing and failing loudly. A single-file program includes it
 * once, after defining PROG (its name, in messages). bench/native/__init__.py
 * rebuilds a program when this file changes too.
 */
#ifndef WS_COMMON_H
#define WS_COMMON_H

#define HEAD_CAP 2048                  /* the server's response head */
#define MIN_COUNT 3                    /* completions the window must hold ... */
#define MAX_STRETCH 10.0               /* ... stretched by up to this many seconds if needed */
#define MAX_SECONDS 600                /* never outlive the benchmark run */

/* RFC 6455 section 1.3's example key, and its accept value. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static int port, ep;                   /* the server's port; the epoll set */
static struct sockaddr_in server;
static char request[256];
static size_t request_len;
/* The key every frame the generators send is masked with. */
static const unsigned char mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This (single-threaded) process's CPU time: cheaper to read than getrusage(), but still a system call. */
static inline double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double own_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* User + system time of process pid (all its threads) from /proc/PID/stat; 0 if there is none. */
static inline double process_cpu(int pid)
{
    char path[64], text[1024];
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *p = strrchr(text, ')');      /* the command name may hold spaces and parentheses */
    unsigned long long utime, stime;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static inline void fail(const char *what, int err)
{
    fprintf(stderr, PROG ": 127.0.0.1:%d: %s%s%s\n", port, what, err ? ": " : "", err ? strerror(err) : "");
    exit(1);
}

/* A frame header's size, from its first two bytes. */
static inline size_t header_size(const unsigned char *h)
{
    unsigned char len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (h[1] & 0x80 ? 4 : 0);
}

/* A whole frame header's payload length. */
static inline uint64_t payload_length(const unsigned char *h)
{
    unsigned char len7 = h[1] & 0x7f;
    if (len7 == 126)
        return (uint64_t)h[2] << 8 | h[3];
    if (len7 < 126)
        return len7;
    uint64_t len = 0;
    for (int i = 0; i < 8; i++)
        len = len << 8 | h[2 + i];
    return len;
}

/* A new non-blocking TCP connection to the server, Nagle off; the connect may still be under way. */
static inline int connect_to_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket", errno);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        if (errno == EADDRNOTAVAIL)
            fail("connect: no free local port (ports in TIME_WAIT? see net.ipv4.tcp_tw_reuse)", 0);
        fail("connect", errno);
    }
    return fd;
}

/* Gathers a server's frame header across reads into fh: 1 once it is whole (*p and *n past what it took). */
static inline int gather_header(unsigned char *fh, size_t *fh_len, const unsigned char **p, size_t *n)
{
    size_t need = *fh_len < 2 ? 2 : header_size(fh);
    size_t take = need - *fh_len < *n ? need - *fh_len : *n;
    memcpy(fh + *fh_len, *p, take);
    *fh_len += take;
    *p += take;
    *n -= take;
    if (*fh_len < 2 || *fh_len < header_size(fh))
        return 0;
    if (fh[1] & 0x80)
        fail("a masked frame from the server", 0);
    return 1;
}

/* The response head (NUL-terminated, end at its blank line): a 101 with the right accept value. */
static inline void check_head(char *head, const char *end)
{
    if (strncmp(head, "HTTP/1.1 101", 12) || (head[12] != ' ' && head[12] != '\r')) {
        char *eol = strstr(head, "\r\n");
        *eol = 0;
        fprintf(stderr, PROG ": 127.0.0.1:%d: the upgrade was refused: %s\n", port, head);
        exit(1);
    }
    for (const char *line = strstr(head, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Accept:", 21))
            continue;
        const char *value = line + 23;
        while (*value == ' ' || *value == '\t')
            value++;
        if (strncmp(value, ACCEPT, sizeof ACCEPT - 1) || (value[sizeof ACCEPT - 1] != '\r' && value[sizeof ACCEPT - 1] != ' '))
            fail("a 101 with the wrong Sec-WebSocket-Accept", 0);
        return;
    }
    fail("a 101 without Sec-WebSocket-Accept", 0);
}

/* Gathers the response head across reads (head holds HEAD_CAP + 1 bytes). Once it is whole, checks it
   (check_head()) and returns its length, frames may follow it there; else 0. *take: the bytes of p taken. */
static inline size_t gather_head(char *head, size_t *head_len, const unsigned char *p, size_t n, size_t *take)
{
    size_t before = *head_len;
    *take = n < HEAD_CAP - before ? n : HEAD_CAP - before;
    memcpy(head + before, p, *take);
    *head_len += *take;
    head[*head_len] = 0;
    char *end = strstr(head + (before > 3 ? before - 3 : 0), "\r\n\r\n");
    if (!end) {
        if (*head_len == HEAD_CAP)
            fail("a response head of more than 2 KiB", 0);
        return 0;
    }
    check_head(head, end);
    return (size_t)(end + 4 - head);
}

static inline double arg_seconds(const char *text, const char *name, double min)
{
    char *end;
    double v = strtod(text, &end);
    if (*end || v < min || v > MAX_SECONDS) {
        fprintf(stderr, PROG ": %s must be a number of seconds from %g to %d\n", name, min, MAX_SECONDS);
        exit(2);
    }
    return v;
}

/* The measuring window: CPU times at its edges, and the polling to leave out of this process's. */
struct meter {
    int polling;                       /* epoll_wait() without sleeping: on two cores or more */
    int server_pid;                    /* whose CPU time to report too; 0: none */
    pid_t parent;                      /* the load generator: gone, this ends too */
    double begin, deadline;            /* when the run began; when it gives up (MAX_SECONDS) */
    double idle;                       /* CPU time spent polling with nothing to do */
    double waiting_since;              /* the CPU time this run of empty polls began; -1: none */
    double t0, cpu0, idle0, server0;   /* at the window's start */
    unsigned long long count0;
    double elapsed, cpu, busy, server; /* over the window, once it ends */
    unsigned long long count;
};

/* The run begins: the epoll set (ep), and a zeroed table of count connections of each bytes. */
static inline void *meter_init(struct meter *m, int server_pid, size_t count, size_t each)
{
    memset(m, 0, sizeof *m);
    m->polling = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    m->server_pid = server_pid;
    m->waiting_since = -1;
    m->parent = getppid();
    m->begin = now();
    m->deadline = m->begin + MAX_SECONDS;
    ep = epoll_create1(EPOLL_CLOEXEC);
    void *table = calloc(count, each);
    if (ep < 0 || !table)
        fail("setting up", errno);
    return table;
}

/* Ten times a second: the runner gone (exit 1), or the run too long (exit 2). */
static inline void meter_check(const struct meter *m, double t)
{
    if (getppid() != m->parent)
        exit(1);
    if (t > m->deadline) {
        fprintf(stderr, PROG ": gave up after %d s\n", MAX_SECONDS);
        exit(2);
    }
}

/* The polling so far, counted up to now: at a window's edge, on the right side of it. */
static inline void meter_settle(struct meter *m)
{
    if (m->waiting_since >= 0) {
        double c = thread_cpu();
        m->idle += c - m->waiting_since;
        m->waiting_since = c;
    }
}

static inline void meter_start(struct meter *m, double t, unsigned long long count)
{
    meter_settle(m);
    m->t0 = t;
    m->count0 = count;
    m->cpu0 = own_cpu();
    m->idle0 = m->idle;
    m->server0 = process_cpu(m->server_pid);
}

/* Whether the window that began at meter_start() is over: duration seconds, stretched (MAX_STRETCH at
   most) until it holds MIN_COUNT completions. If so, its figures are taken (meter_report() prints them). */
static inline int meter_stop(struct meter *m, double t, unsigned long long count, double duration)
{
    double end = m->t0 + duration;
    if (t < end || (count - m->count0 < MIN_COUNT && t < end + MAX_STRETCH))
        return 0;
    meter_settle(m);
    m->elapsed = t - m->t0;
    m->count = count - m->count0;
    m->cpu = (own_cpu() - m->cpu0) / m->elapsed;
    m->busy = m->cpu - (m->idle - m->idle0) / m->elapsed;
    m->server = (process_cpu(m->server_pid) - m->server0) / m->elapsed;
    return 1;
}

/* The JSON line the load generator reads. */
static inline void meter_report(const struct meter *m)
{
    printf("{\"count\": %llu, \"elapsed\": %.6f, \"rate\": %.3f, \"cpu\": %.3f, \"busy\": %.3f, "
           "\"polling\": %s, \"server_cpu\": %.3f}\n",
           m->count, m->elapsed, (double)m->count / m->elapsed, m->cpu, m->busy > 0 ? m->busy : 0,
           m->polling ? "true" : "false", m->server);
    fflush(stdout);
}

/* epoll_wait(): at once when polling, else until next (the window's edge), a tenth of a second at most,
   so the checks run. Returns the events, 0 for none. */
static inline int meter_wait(struct meter *m, struct epoll_event *events, int max, double t, double next)
{
    next = next > t && next < t + 0.1 ? next : t + 0.1;
    int n = epoll_wait(ep, events, max, m->polling ? 0 : (int)((next - t) * 1000) + 1);
    if (n < 0 && errno != EINTR)
        fail("epoll_wait", errno);
    if (n <= 0) {
        if (m->polling && m->waiting_since < 0)
            m->waiting_since = thread_cpu();
        return 0;
    }
    if (m->waiting_since >= 0) {       /* CPU time, not wall time: a preempted poller wasn't busy */
        m->idle += thread_cpu() - m->waiting_since;
        m->waiting_since = -1;
    }
    return n;
}

/* Signals, descriptors, the server's address and the request: "GET / ..." for ws, one byte for tcp. */
static inline void setup(int ws)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit lim;
    if (!getrlimit(RLIMIT_NOFILE, &lim)) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (ws)
        request_len = (size_t)snprintf(request, sizeof request,
                                       "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                                       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                       "Sec-WebSocket-Key: " KEY "\r\n\r\n", port);
    else
        request_len = (size_t)snprintf(request, sizeof request, "x");
}

#endif
