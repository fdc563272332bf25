/* SPDX-License-Identifier: MIT */
/*
 * tlsserver: the baseline of `make bench`. It does the least work a device
 * registration can need on the server, a TLS handshake that requests the
 * client certificate and verifies the client chain against a trust store,
 * and nothing else: no HTTP, no store. Workers, listening sockets
 * (SO_REUSEPORT) and the TLS set-up mirror dpsd's, so that dpsd's rate
 * divided by this one's says what the rest of the request path costs.
 *
 *     tlsserver --listen HOST:PORT --cert PEM --key PEM --trust PEM [--workers N]
 *
 * It prints its counters to stderr on SIGTERM or SIGINT and exits.
 */
#include "core/common.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_WORKERS 256

struct worker {
    pthread_t tid;
    struct event_base *base;
    struct evconnlistener *listener;
};

static SSL_CTX *ctx;
static atomic_long accepted, verified, anonymous, refused, failed;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("tlsserver: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_CONNECTED) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        X509 *peer = SSL_get0_peer_certificate(ssl);

        /* The handshake is over and the client chain verified (or absent): close. */
        if (!peer)
            anonymous++;
        else if (SSL_get_verify_result(ssl) == X509_V_OK)
            verified++;
        else
            refused++;
        /* close_notify, so the client can tell a finished handshake from a cut one. */
        SSL_shutdown(ssl);
    } else {
        failed++;
    }
    bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct worker *w = arg;
    struct bufferevent *bev;
    SSL *ssl = SSL_new(ctx);
    struct timeval to = {30, 0};

    accepted++;
    if (!ssl) {
        evutil_closesocket(fd);
        return;
    }
    bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bufferevent_setcb(bev, NULL, NULL, on_event, w);
    bufferevent_set_timeouts(bev, &to, &to);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

/*
 * As dpsd's context: TLS 1.2 and up, no renegotiation, client certificate
 * requested, no resumption.
 */
static void ctx_init(const char *cert, const char *key, const char *trust)
{
    X509_STORE *store;

    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        die("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        die("cannot load certificate '%s'", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        die("cannot load private key '%s'", key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        die("the key '%s' does not match the certificate '%s'", key, cert);
    if (SSL_CTX_load_verify_locations(ctx, trust, NULL) != 1)
        die("cannot load trust anchors '%s'", trust);
    /*
     * The anchor is the enrolled intermediate, as for a dpsd enrollment
     * group on an intermediate: the chain ends there, not at a root.
     */
    store = SSL_CTX_get_cert_store(ctx);
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_verify_depth(ctx, 10);
    /* dpsd's session settings: no session cache, no tickets (two tickets cost a third). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
}

static int listener_socket(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int fd, one = 1, rc;

    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        die("'--listen' must be HOST:PORT, got '%s'", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (rc != 0)
        die("cannot resolve '%s': %s", hostport, gai_strerror(rc));
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        die("cannot listen on '%s': %s", hostport, strerror(errno));
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},  {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},     {"trust", required_argument, NULL, 't'},
        {"workers", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0}};
    const char *listen_at = NULL, *cert = NULL, *key = NULL, *trust = NULL;
    struct worker *workers;
    long nworkers = sysconf(_SC_NPROCESSORS_ONLN);
    sigset_t sigs;
    int ch, sig;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            listen_at = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            trust = optarg;
            break;
        case 'w': {
            char *end = NULL;
            nworkers = strtol(optarg, &end, 10);
            if (!end || *end || nworkers < 1 || nworkers > MAX_WORKERS)
                die("'--workers' must be 1 to %d, got '%s'", MAX_WORKERS, optarg);
            break;
        }
        default:
            fprintf(stderr, "usage: tlsserver --listen HOST:PORT --cert PEM --key PEM --trust PEM "
                            "[--workers N]\n");
            return 2;
        }
    }
    if (!listen_at || !cert || !key || !trust)
        die("'--listen', '--cert', '--key' and '--trust' are required");
    if (nworkers < 1)
        nworkers = 1;
    ctx_init(cert, key, trust);
    evthread_use_pthreads();
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    workers = xcalloc((size_t)nworkers, sizeof(*workers));
    for (long i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        /* as dpsd's workers: epoll's change list, one epoll_ctl per descriptor and loop pass */
        struct event_config *cfg = event_config_new();

        if (!cfg || event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
            die("cannot configure an event loop");
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!w->base)
            die("cannot create an event loop");
        w->listener = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE, -1,
                                         listener_socket(listen_at));
        if (!w->listener || pthread_create(&w->tid, NULL, worker_main, w) != 0)
            die("cannot start worker %ld", i);
    }
    fprintf(stderr, "tlsserver: listening on %s with %ld workers\n", listen_at, nworkers);
    sigwait(&sigs, &sig);
    for (long i = 0; i < nworkers; i++)
        event_base_loopbreak(workers[i].base);
    for (long i = 0; i < nworkers; i++) {
        pthread_join(workers[i].tid, NULL);
        evconnlistener_free(workers[i].listener);
        event_base_free(workers[i].base);
    }
    free(workers);
    SSL_CTX_free(ctx);
    fprintf(stderr, "tlsserver: accepted=%ld verified=%ld anonymous=%ld refused=%ld failed=%ld\n",
            (long)accepted, (long)verified, (long)anonymous, (long)refused, (long)failed);
    return 0;
}
