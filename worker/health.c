#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "status.h"

#define REQUEST_MAX         8192 /* bytes of request line and headers */
#define REQUEST_TIMEOUT_MS  2000 /* to receive them */
#define RESPONSE_TIMEOUT_MS 5000 /* to send the answer */
#define DRAIN_TIMEOUT_MS    100  /* to see the client close after the answer */

struct ap_health {
    int listen_fd;
    int wake[2]; /* a byte on wake[1] stops the thread */
    pthread_t thread;
    int port;
    ap_metrics *metrics; /* borrowed; may be NULL */
    long long stale_after_ms;
    atomic_llong last_beat_ms; /* CLOCK_MONOTONIC */
    atomic_int ok[AP_HEALTH_NCHECKS];
};

static const char *const check_names[AP_HEALTH_NCHECKS] = {
    [AP_HEALTH_KAFKA] = "kafka",
    [AP_HEALTH_REDIS] = "redis",
    [AP_HEALTH_PG] = "postgres",
    [AP_HEALTH_ASSIGNED] = "assigned",
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

/* Waits until fd is ready for `events` or the deadline passes; 1 when ready. */
static int wait_fd(int fd, short events, long long deadline) {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

/* Reads the request line and headers into buf (NUL-terminated). Returns the
 * length, 0 when the client went away or was too slow, -1 when it is larger
 * than the buffer. */
static long read_request(int fd, char *buf, size_t size) {
    long long deadline = now_ms() + REQUEST_TIMEOUT_MS;
    size_t len = 0;
    buf[0] = '\0';
    while (!strstr(buf, "\r\n\r\n") && !strstr(buf, "\n\n")) {
        if (len == size - 1)
            return -1;
        if (!wait_fd(fd, POLLIN, deadline))
            return 0;
        ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
            return 0;
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            if (strlen(buf) != len) /* a NUL byte: not a request */
                return 0;
        }
    }
    return (long)len;
}

static int send_all(int fd, const char *p, size_t len, long long deadline) {
    while (len) {
        if (!wait_fd(fd, POLLOUT, deadline))
            return -1;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

static void respond(int fd, int code, const char *reason, const char *content_type,
                    const char *extra_headers, const char *body) {
    char head[512];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     code, reason, content_type, len, extra_headers ? extra_headers : "");
    long long deadline = now_ms() + RESPONSE_TIMEOUT_MS;
    if (n < 0 || (size_t)n >= sizeof head || send_all(fd, head, (size_t)n, deadline) ||
        send_all(fd, body, len, deadline))
        return;
    /* Half-close and wait briefly for the client's close, so that unread
     * request bytes do not turn our close into a reset that loses the answer. */
    shutdown(fd, SHUT_WR);
    char sink[512];
    long long drain = now_ms() + DRAIN_TIMEOUT_MS;
    while (wait_fd(fd, POLLIN, drain) && recv(fd, sink, sizeof sink, 0) > 0)
        ;
}

static void respond_text(int fd, int code, const char *reason, const char *body) {
    respond(fd, code, reason, "text/plain; charset=utf-8", NULL, body);
}

static void serve_healthz(ap_health *h, int fd) {
    long long age = now_ms() - atomic_load(&h->last_beat_ms);
    if (age <= h->stale_after_ms) {
        respond_text(fd, 200, "OK", "ok\n");
        return;
    }
    char body[160];
    snprintf(body, sizeof body, "stale: the main loop last turned %lld ms ago (limit %lld ms)\n",
             age, h->stale_after_ms);
    respond_text(fd, 503, "Service Unavailable", body);
}

static void serve_readyz(ap_health *h, int fd) {
    char body[160] = "not ready:";
    int missing = 0;
    for (int i = 0; i < AP_HEALTH_NCHECKS; i++) {
        if (atomic_load(&h->ok[i]))
            continue;
        size_t len = strlen(body);
        snprintf(body + len, sizeof body - len, "%s %s", missing++ ? "," : "", check_names[i]);
    }
    if (!missing) {
        respond_text(fd, 200, "OK", "ok\n");
        return;
    }
    size_t len = strlen(body);
    snprintf(body + len, sizeof body - len, "\n");
    respond_text(fd, 503, "Service Unavailable", body);
}

static void serve_metrics(ap_health *h, int fd) {
    if (!h->metrics) {
        respond_text(fd, 404, "Not Found", "not found\n");
        return;
    }
    char *text = ap_metrics_render(h->metrics);
    if (!text) {
        respond_text(fd, 503, "Service Unavailable", "out of memory\n");
        return;
    }
    respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, text);
    free(text);
}

/* One connection: read one request, answer it. The caller closes fd. */
static void serve(ap_health *h, int fd) {
    char req[REQUEST_MAX];
    long n = read_request(fd, req, sizeof req);
    if (n == 0)
        return;
    if (n < 0) {
        respond_text(fd, 431, "Request Header Fields Too Large", "request too large\n");
        return;
    }
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    char *eol = strpbrk(req, "\r\n");
    *eol = '\0';
    char *method = req, *target = strchr(method, ' ');
    char *version = target ? strchr(target + 1, ' ') : NULL;
    if (!target || !version || strncmp(version + 1, "HTTP/1.", 7) || !version[8] || version[9]) {
        respond_text(fd, 400, "Bad Request", "bad request\n");
        return;
    }
    *target++ = '\0';
    *version = '\0';
    target[strcspn(target, "?#")] = '\0';
    if (strcmp(method, "GET")) {
        respond(fd, 405, "Method Not Allowed", "text/plain; charset=utf-8", "Allow: GET\r\n",
                "method not allowed\n");
        return;
    }
    if (!strcmp(target, "/healthz"))
        serve_healthz(h, fd);
    else if (!strcmp(target, "/readyz"))
        serve_readyz(h, fd);
    else if (!strcmp(target, "/metrics"))
        serve_metrics(h, fd);
    else
        respond_text(fd, 404, "Not Found", "not found\n");
}

static void *health_thread(void *arg) {
    ap_health *h = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = h->listen_fd, .events = POLLIN},
                              {.fd = h->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept(h->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                poll(&p[1], 1, 100); /* out of descriptors: no busy loop */
            continue;
        }
        if (set_nonblock_cloexec(fd) == 0)
            serve(h, fd);
        close(fd);
    }
    return NULL;
}

/* Binds and listens on the first address of bind_addr that allows it;
 * returns the socket or -1 with err set. */
static int listen_on(const char *bind_addr, int port, char *err, size_t errsz) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    int fd = -1, e;
    snprintf(service, sizeof service, "%d", port);
    if ((e = getaddrinfo(bind_addr, service, &hints, &res))) {
        ap_fail(AP_ERR_INVALID, err, errsz, "cannot resolve health address '%s': %s", bind_addr,
                gai_strerror(e));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int one = 1;
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && set_nonblock_cloexec(fd) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        e = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
        errno = e;
    }
    if (fd < 0)
        ap_fail(AP_ERR_IO, err, errsz, "cannot listen on health address '%s' port %d: %s",
                bind_addr, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

ap_health *ap_health_start(const char *bind_addr, int port, ap_metrics *m, int stale_after_ms,
                           char *err, size_t errsz) {
    ap_health *h = NULL;
    int listen_fd = -1, wake[2] = {-1, -1};
    if (!bind_addr)
        bind_addr = "127.0.0.1";
    if (port < 0 || port > 65535 || stale_after_ms <= 0) {
        ap_fail(AP_ERR_INVALID, err, errsz, "bad health server arguments: port %d, staleness %d ms",
                port, stale_after_ms);
        goto fail;
    }
    if ((listen_fd = listen_on(bind_addr, port, err, errsz)) < 0)
        goto fail;
    if (pipe(wake) || set_nonblock_cloexec(wake[0]) || set_nonblock_cloexec(wake[1])) {
        ap_fail(AP_ERR_IO, err, errsz, "cannot create the health server's pipe: %s",
                strerror(errno));
        goto fail;
    }
    if (!(h = calloc(1, sizeof *h))) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto fail;
    }
    struct sockaddr_storage addr;
    socklen_t addrlen = sizeof addr;
    if (getsockname(listen_fd, (struct sockaddr *)&addr, &addrlen)) {
        ap_fail(AP_ERR_IO, err, errsz, "cannot read the health server's port: %s", strerror(errno));
        goto fail;
    }
    h->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                               : ((struct sockaddr_in *)&addr)->sin_port);
    h->listen_fd = listen_fd;
    h->wake[0] = wake[0];
    h->wake[1] = wake[1];
    h->metrics = m;
    h->stale_after_ms = stale_after_ms;
    atomic_init(&h->last_beat_ms, now_ms());
    for (int i = 0; i < AP_HEALTH_NCHECKS; i++)
        atomic_init(&h->ok[i], 0);

    /* The thread inherits a mask that blocks every signal. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&h->thread, NULL, health_thread, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        ap_fail(AP_ERR_IO, err, errsz, "cannot start the health server thread: %s", strerror(e));
        goto fail;
    }
    return h;
fail:
    free(h);
    if (wake[0] >= 0)
        close(wake[0]);
    if (wake[1] >= 0)
        close(wake[1]);
    if (listen_fd >= 0)
        close(listen_fd);
    return NULL;
}

int ap_health_port(const ap_health *h) {
    return h ? h->port : 0;
}

void ap_health_beat(ap_health *h) {
    if (h)
        atomic_store_explicit(&h->last_beat_ms, now_ms(), memory_order_relaxed);
}

void ap_health_set(ap_health *h, ap_health_check check, int ok) {
    if (h && (int)check >= 0 && check < AP_HEALTH_NCHECKS)
        atomic_store_explicit(&h->ok[check], ok != 0, memory_order_relaxed);
}

void ap_health_stop(ap_health *h) {
    if (!h)
        return;
    while (write(h->wake[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(h->thread, NULL);
    close(h->wake[0]);
    close(h->wake[1]);
    close(h->listen_fd);
    free(h);
}
