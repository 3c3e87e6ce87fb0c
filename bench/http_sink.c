/* http_sink.c — the live target of the benchmark's http mode: an HTTP/1.1
 * server on 127.0.0.1 that answers every request 200 {"ok":true} after a fixed
 * delay, keeping connections alive, for as many requests at once as clients
 * open connections (one thread, epoll). A platform API that takes --delay-ms
 * to answer, without being the bottleneck itself.
 *
 *   http_sink [--delay-ms MS] [--port-file FILE]
 *
 * Prints the port it listens on as the first line of stdout (and writes it to
 * --port-file); on SIGTERM or SIGINT prints the number of requests answered
 * and exits 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX   16384
#define QUEUE_MAX 65536 /* requests waiting for their answer */

typedef struct conn {
    int fd;
    size_t len;  /* bytes of the current request read so far */
    int waiting; /* a request is answered at its due time */
    char buf[BUF_MAX];
} conn;

typedef struct pending {
    conn *c;
    long long due_ms;
} pending;

static volatile sig_atomic_t stop;
static pending queue[QUEUE_MAX]; /* a ring: every delay is the same, so FIFO is due order */
static size_t head, count;
static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 11\r\n\r\n{\"ok\":true}";

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void conn_close(int ep, conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1; /* freed when no answer refers to it any more */
    if (!c->waiting)
        free(c);
}

/* The length of the complete request at the start of c->buf, 0 while it is
 * incomplete, -1 when it cannot be read. */
static long request_length(const conn *c) {
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return c->len == BUF_MAX ? -1 : 0;
    size_t headers = (size_t)(end - c->buf) + 4, body = 0;
    for (const char *p = c->buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        p += *p == '\n';
        if (!strncasecmp(p, "content-length:", 15))
            body = strtoul(p + 15, NULL, 10);
    }
    if (headers + body > BUF_MAX)
        return -1;
    return headers + body <= c->len ? (long)(headers + body) : 0;
}

/* Queues the answer to the complete request at the start of c->buf, if any.
 * Returns -1 when the connection must be closed. */
static int conn_queue(conn *c, int delay_ms) {
    long len = c->waiting ? 0 : request_length(c);
    if (len < 0 || (len > 0 && count == QUEUE_MAX))
        return -1;
    if (len > 0) {
        memmove(c->buf, c->buf + len, c->len - (size_t)len);
        c->len -= (size_t)len;
        c->waiting = 1;
        queue[(head + count++) % QUEUE_MAX] = (pending){c, now_ms() + delay_ms};
    }
    return 0;
}

/* Reads what the client sent, and queues the answer to a complete request. */
static void conn_read(int ep, conn *c, int delay_ms) {
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(ep, c);
            return;
        }
        if (n < 0)
            break;
        c->len += (size_t)n;
        if (c->len == BUF_MAX)
            break;
    }
    if (conn_queue(c, delay_ms))
        conn_close(ep, c);
}

int main(int argc, char **argv) {
    int delay_ms = 5;
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc)
            delay_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else {
            fprintf(stderr, "usage: http_sink [--delay-ms MS] [--port-file FILE]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 1024) ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
        perror("http_sink: listen");
        return 1;
    }
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", ntohs(addr.sin_port)) < 0 || fclose(f)) {
            perror(port_file);
            return 1;
        }
    }

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    unsigned long long answered = 0;
    while (!stop) {
        int timeout = count ? (int)(queue[head].due_ms - now_ms()) : 1000;
        int n = epoll_wait(ep, events, 256, timeout < 0 ? 0 : timeout);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c) {
                conn_read(ep, c, delay_ms);
                continue;
            }
            int fd;
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conn *nc = calloc(1, sizeof *nc);
                if (!nc) {
                    close(fd);
                    continue;
                }
                nc->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            }
        }
        for (long long now = now_ms(); count && queue[head].due_ms <= now; count--) {
            conn *c = queue[head].c;
            head = (head + 1) % QUEUE_MAX;
            c->waiting = 0;
            if (c->fd < 0) {
                free(c);
                continue;
            }
            if (write(c->fd, answer, sizeof answer - 1) != (ssize_t)sizeof answer - 1) {
                conn_close(ep, c);
                continue;
            }
            answered++;
            if (conn_queue(c, delay_ms)) /* the next request may have arrived already */
                conn_close(ep, c);
        }
    }
    printf("answered %llu\n", answered);
    return 0;
}
