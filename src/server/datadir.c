/* SPDX-License-Identifier: MIT */
/*
 * First-start initialisation and later checks of the data directory (see
 * datadir.h for the layout). Initialisation builds everything in
 * DIR/.init-tmp, then renames the pieces into DIR with `id-scope` last: a
 * directory without `id-scope` holds nothing but leftovers of an
 * interrupted start, which the next start removes and redoes.
 */
#include "core/common.h"
#include "server/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/b64.h"
#include "core/connstr.h"
#include "core/pki.h"
#include "server/log.h"
#include "store/store.h"

#define TMP_NAME ".init-tmp"
#define ID_SCOPE_SETTING "id-scope"

/* What an interrupted initialisation can leave behind, and nothing else. */
static const char *const init_names[] = {
    TMP_NAME,      "tls",         "connection-string", "dpsd.db",
    "dpsd.db-wal", "dpsd.db-shm", "dpsd.db-journal",
};

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);

    snprintf(p, n, "%s/%s", a, b);
    return p;
}

bool datadir_id_scope_valid(const char *s)
{
    if (strlen(s) != 11 || strncmp(s, "0ne", 3) != 0)
        return false;
    for (int i = 3; i < 11; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

void datadir_release(struct datadir *d)
{
    if (!d)
        return;
    free(d->id_scope);
    if (d->connection_string) {
        OPENSSL_cleanse(d->connection_string, strlen(d->connection_string));
        free(d->connection_string);
    }
    free(d->tls_ca);
    free(d->tls_cert);
    free(d->tls_key);
    memset(d, 0, sizeof(*d));
}

static int fsync_path(const char *path, struct dps_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return dps_error_set(err, DPS_ERR_IO, "cannot sync '%s': %s", path, strerror(e));
    }
    close(fd);
    return DPS_OK;
}

/* Writes a new file (it must not exist) with mode, synced to disk. */
static int write_new_file(const char *path, const char *text, mode_t mode, struct dps_error *err)
{
    size_t len = strlen(text), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

    if (fd < 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    close(fd);
    return DPS_OK;
fail:
    dps_error_set(err, DPS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return err ? err->code : DPS_ERR_IO;
}

/* Reads a small text file and strips one trailing newline; caller frees *out. */
static int read_text(const char *path, size_t max, char **out, struct dps_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = pki_file_read(path, max, &buf, &len, err);

    if (rc != DPS_OK)
        return rc;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' holds a NUL byte", path);
    }
    *out = buf;
    return DPS_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) == 0 ? 0 : -1;
}

static int remove_tree(const char *path, struct dps_error *err)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? DPS_OK
                               : dps_error_set(err, DPS_ERR_IO, "cannot inspect '%s': %s", path,
                                               strerror(errno));
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
    return DPS_OK;
}

/*
 * The store holds every policy and enrollment key: it, and the WAL and
 * shared-memory files SQLite gives the database's own mode, must be private
 * to dpsd's user whatever the mode of a data directory the user made.
 * Creates db (empty, which SQLite takes as a new database) mode 0600 when
 * missing, and takes group and other access away from it and its companions
 * when present. db is the store's path.
 */
static int store_file_private(const char *db, struct dps_error *err)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char path[4200];
    struct stat st;
    int fd = open(db, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd >= 0) {
        close(fd);
        return DPS_OK;
    }
    for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
        snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0)
            continue;
        if (chmod(path, st.st_mode & 0700) != 0)
            return dps_error_set(err, DPS_ERR_IO, "cannot make '%s' private: %s", path,
                                 strerror(errno));
        log_msg(LOG_WARNING, "'%s' was readable by others: now mode %03o", path,
                (unsigned)(st.st_mode & 0700));
    }
    return DPS_OK;
}

static bool is_init_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(init_names); i++)
        if (strcmp(name, init_names[i]) == 0)
            return true;
    return false;
}

/*
 * Looks at DIR: *initialised when `id-scope` exists; otherwise checks that
 * nothing but leftovers of an interrupted initialisation is there.
 */
static int inspect(const char *dir, bool *initialised, struct dps_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool have_scope = false;
    char foreign[256] = "";

    if (!d)
        return dps_error_set(err, DPS_ERR_IO, "cannot read data directory '%s': %s", dir,
                             strerror(errno));
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strcmp(e->d_name, "id-scope") == 0)
            have_scope = true;
        else if (!is_init_name(e->d_name) && !foreign[0])
            snprintf(foreign, sizeof(foreign), "%s", e->d_name);
    }
    closedir(d);
    if (!have_scope && foreign[0])
        return dps_error_set(err, DPS_ERR_INVAL,
                             "data directory '%s' is not empty and is not a dpsd data directory "
                             "(it holds '%s' but no 'id-scope')",
                             dir, foreign);
    *initialised = have_scope;
    return DPS_OK;
}

static int make_tls(const char *tlsdir, const char *hostname, struct dps_error *err)
{
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    X509 *ca = NULL, *srv = NULL;
    char *p = NULL;
    const char *dns[2] = {hostname, "localhost"};
    const char *ips[3] = {"127.0.0.1", "::1", NULL};
    size_t ndns = strcmp(hostname, "localhost") == 0 ? 1 : 2, nips = 2;
    char subject[300];
    int rc;

    /* A host name that is an IP address belongs in the IP SANs. */
    if (strspn(hostname, "0123456789.") == strlen(hostname) || strchr(hostname, ':')) {
        dns[0] = "localhost";
        ndns = 1;
        if (strcmp(hostname, "127.0.0.1") != 0 && strcmp(hostname, "::1") != 0)
            ips[nips++] = hostname;
    }
    struct pki_cert_spec ca_spec = {.kind = PKI_CERT_ROOT_CA,
                                    .subject = "CN=dpsd development CA,O=dpsd",
                                    .days = 3650,
                                    .pathlen = -1};
    snprintf(subject, sizeof(subject), "CN=%s", dns[0]);
    struct pki_cert_spec srv_spec = {.kind = PKI_CERT_SERVER,
                                     .subject = subject,
                                     .days = 825,
                                     .pathlen = -1,
                                     .dns_names = dns,
                                     .n_dns_names = ndns,
                                     .ip_addresses = ips,
                                     .n_ip_addresses = nips};

    if ((rc = pki_key_generate(PKI_KEY_P256, &ca_key, err)) != DPS_OK ||
        (rc = pki_cert_issue(&ca_spec, ca_key, NULL, ca_key, &ca, err)) != DPS_OK ||
        (rc = pki_key_generate(PKI_KEY_P256, &srv_key, err)) != DPS_OK ||
        (rc = pki_cert_issue(&srv_spec, srv_key, ca, ca_key, &srv, err)) != DPS_OK)
        goto out;
    X509 *chain[2] = {srv, ca};
    p = path_join(tlsdir, "ca.pem");
    if ((rc = pki_certs_write(p, &ca, 1, 0, err)) != DPS_OK)
        goto out;
    free(p);
    p = path_join(tlsdir, "ca.key");
    if ((rc = pki_key_write(p, ca_key, NULL, 0, err)) != DPS_OK)
        goto out;
    free(p);
    p = path_join(tlsdir, "server.pem");
    if ((rc = pki_certs_write(p, chain, 2, 0, err)) != DPS_OK)
        goto out;
    free(p);
    p = path_join(tlsdir, "server.key");
    rc = pki_key_write(p, srv_key, NULL, 0, err);
out:
    free(p);
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    return rc;
}

/*
 * Creates the owner policy with key unless the store has one. Nodes that
 * start together on a new shared store race here: the store lets exactly
 * one create it, and the others find it when they read it again.
 */
static int create_owner_policy(struct store *s, const char *key, struct dps_error *err)
{
    struct store_policy in = {.name = DATADIR_OWNER_POLICY,
                              .primary_key = (char *)key,
                              .rights =
                                  STORE_RIGHT_SERVICE_CONFIG | STORE_RIGHT_ENROLLMENT_READ |
                                  STORE_RIGHT_ENROLLMENT_WRITE | STORE_RIGHT_REGISTRATION_READ |
                                  STORE_RIGHT_REGISTRATION_WRITE | STORE_RIGHT_DEVICE_CONNECT};
    int rc;

    /* a node already serving this store must see the new policy */
    if ((rc = store_batch_begin(s, err)) != DPS_OK)
        return rc;
    rc = store_policy_create(s, &in, NULL, err);
    if (rc == DPS_OK)
        rc = store_generation_bump(s, STORE_GENERATION_POLICIES, err);
    if (rc == DPS_OK)
        return store_batch_commit(s, err);
    store_batch_rollback(s);
    return rc;
}

/*
 * Makes sure the store knows the ID scope and the owner policy: writes them
 * when the store is new, takes them when it is not (a shared store may
 * have been initialised by another node, even one starting at this very
 * moment: then its values win).
 *
 * id_scope, key: in: this directory's values; out: the store's (owned).
 */
static int sync_store(const char *dsn, char **id_scope, char **key, struct dps_error *err)
{
    struct store *s = NULL;
    struct store_policy pol = {0};
    char *scope = NULL;
    int rc;

    if ((rc = store_open(dsn, &s, err)) != DPS_OK)
        goto out;
    rc = store_setting_get(s, ID_SCOPE_SETTING, &scope, err);
    if (rc == DPS_ERR_NOT_FOUND) {
        rc = store_setting_create(s, ID_SCOPE_SETTING, *id_scope, err);
        if (rc == DPS_ERR_CONFLICT) /* another node set it since the read */
            rc = store_setting_get(s, ID_SCOPE_SETTING, &scope, err);
        if (rc != DPS_OK)
            goto out;
    } else if (rc != DPS_OK) {
        goto out;
    }
    if (scope && strcmp(scope, *id_scope) != 0) {
        log_msg(LOG_WARNING,
                "the store's ID scope '%s' differs from this directory's '%s': "
                "using the store's",
                scope, *id_scope);
        free(*id_scope);
        *id_scope = scope;
        scope = NULL;
    }
    rc = store_policy_get(s, DATADIR_OWNER_POLICY, &pol, err);
    if (rc == DPS_ERR_NOT_FOUND) {
        rc = create_owner_policy(s, *key, err);
        if (rc == DPS_ERR_CONFLICT) /* another node created it since the read */
            rc = store_policy_get(s, DATADIR_OWNER_POLICY, &pol, err);
    }
    if (rc == DPS_OK && pol.primary_key && strcmp(pol.primary_key, *key) != 0) {
        /* The store is authoritative: a key rotated through the API wins. */
        OPENSSL_cleanse(*key, strlen(*key));
        free(*key);
        *key = xstrdup(pol.primary_key);
    }
out:
    store_policy_release(&pol);
    free(scope);
    store_close(s);
    return rc;
}

static char *make_connection_string(const char *host, const char *key)
{
    size_t n = strlen(host) + strlen(key) + 100;
    char *s = xmalloc(n);

    snprintf(s, n, "HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", host,
             DATADIR_OWNER_POLICY, key);
    return s;
}

/* Builds a complete directory in DIR/.init-tmp and moves it into place. */
static int initialise(const struct config *cfg, struct dps_error *err)
{
    const char *dir = cfg->data_dir;
    char *tmp = path_join(dir, TMP_NAME), *tlsdir = path_join(tmp, "tls");
    char *p = NULL, *q = NULL, *key = NULL, *cs = NULL, *scope_nl = NULL;
    char default_dsn[4200], tmp_dsn[4200], scope[16];
    unsigned char raw[32], scope_raw[4];
    char *id_scope = NULL;
    bool local_store;
    int rc;

    for (size_t i = 0; i < ARRAY_SIZE(init_names); i++) {
        free(p);
        p = path_join(dir, init_names[i]);
        if ((rc = remove_tree(p, err)) != DPS_OK)
            goto out;
    }
    if (mkdir(tmp, 0700) != 0 || mkdir(tlsdir, 0755) != 0) {
        rc = dps_error_set(err, DPS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = make_tls(tlsdir, cfg->hostname, err)) != DPS_OK)
        goto out;
    if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(scope_raw, sizeof(scope_raw)) != 1) {
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "random number generator failed");
        goto out;
    }
    snprintf(scope, sizeof(scope), "0ne%02X%02X%02X%02X", scope_raw[0], scope_raw[1], scope_raw[2],
             scope_raw[3]);
    id_scope = xstrdup(scope);
    if (b64_encode(raw, sizeof(raw), &key) != DPS_OK) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    OPENSSL_cleanse(raw, sizeof(raw));

    /* The default store lives in DIR and is built with the rest; any other is shared. */
    snprintf(default_dsn, sizeof(default_dsn), "sqlite:%s/dpsd.db", dir);
    local_store = strcmp(cfg->store, default_dsn) == 0;
    snprintf(tmp_dsn, sizeof(tmp_dsn), "sqlite:%s/dpsd.db", tmp);
    if (local_store && (rc = store_file_private(tmp_dsn + strlen("sqlite:"), err)) != DPS_OK)
        goto out;
    if ((rc = sync_store(local_store ? tmp_dsn : cfg->store, &id_scope, &key, err)) != DPS_OK)
        goto out;

    cs = make_connection_string(cfg->hostname, key);
    size_t n = strlen(cs) + 2;
    char *cs_nl = xmalloc(n);
    snprintf(cs_nl, n, "%s\n", cs);
    free(p);
    p = path_join(tmp, "connection-string");
    rc = write_new_file(p, cs_nl, 0600, err);
    OPENSSL_cleanse(cs_nl, n);
    free(cs_nl);
    if (rc != DPS_OK)
        goto out;
    n = strlen(id_scope) + 2;
    scope_nl = xmalloc(n);
    snprintf(scope_nl, n, "%s\n", id_scope);
    free(p);
    p = path_join(tmp, "id-scope");
    if ((rc = write_new_file(p, scope_nl, 0644, err)) != DPS_OK ||
        (rc = fsync_path(tlsdir, err)) != DPS_OK || (rc = fsync_path(tmp, err)) != DPS_OK)
        goto out;

    /* Into place, `id-scope` last: from then on the directory counts as complete. */
    static const char *const order[] = {"tls", "dpsd.db", "connection-string", "id-scope"};
    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        free(p);
        free(q);
        p = path_join(tmp, order[i]);
        q = path_join(dir, order[i]);
        if (i == 1 && !local_store)
            continue;
        if (rename(p, q) != 0) {
            rc = dps_error_set(err, DPS_ERR_IO, "cannot move '%s' to '%s': %s", p, q,
                               strerror(errno));
            goto out;
        }
        if ((rc = fsync_path(dir, err)) != DPS_OK)
            goto out;
    }
    rc = remove_tree(tmp, err);
out:
    if (rc != DPS_OK) {
        /* Leave nothing half-made; the next start would clean up anyway. */
        struct dps_error ignored;
        remove_tree(tmp, &ignored);
    }
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    if (cs) {
        OPENSSL_cleanse(cs, strlen(cs));
        free(cs);
    }
    free(id_scope);
    free(scope_nl);
    free(p);
    free(q);
    free(tmp);
    free(tlsdir);
    return rc;
}

static int load(const struct config *cfg, struct datadir *d, struct dps_error *err)
{
    char *p = NULL, *key = NULL;
    struct connstr *cs = NULL;
    struct dps_error e;
    int rc;

    p = path_join(cfg->data_dir, "id-scope");
    if ((rc = read_text(p, 64, &d->id_scope, &e)) != DPS_OK) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "data directory '%s' is unreadable: %s",
                           cfg->data_dir, e.msg);
        goto out;
    }
    if (!datadir_id_scope_valid(d->id_scope)) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'%s' is corrupt: expected '0ne' and 8 upper-case hex digits", p);
        goto out;
    }
    free(p);
    p = path_join(cfg->data_dir, "connection-string");
    if ((rc = read_text(p, 4096, &d->connection_string, &e)) != DPS_OK) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "data directory '%s' is unreadable: %s",
                           cfg->data_dir, e.msg);
        goto out;
    }
    if (connstr_parse(d->connection_string, strlen(d->connection_string), &cs, &e) != DPS_OK ||
        strcmp(cs->key_name, DATADIR_OWNER_POLICY) != 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' is corrupt: %s", p,
                           cs ? "not the provisioningserviceowner policy" : e.msg);
        goto out;
    }
    if (strcmp(cs->host_name, cfg->hostname) != 0)
        log_msg(LOG_WARNING,
                "'hostname' is '%s' but the data directory was made for '%s': the connection "
                "string and the development certificate still name '%s'",
                cfg->hostname, cs->host_name, cs->host_name);
    /* A missing local store would be recreated empty: refuse instead of losing data quietly. */
    char default_dsn[4200];
    snprintf(default_dsn, sizeof(default_dsn), "sqlite:%s/dpsd.db", cfg->data_dir);
    free(p);
    p = path_join(cfg->data_dir, "dpsd.db");
    if (strcmp(cfg->store, default_dsn) == 0 && access(p, F_OK) != 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "data directory '%s' is incomplete: the store '%s' is missing",
                           cfg->data_dir, p);
        goto out;
    }
    if (strcmp(cfg->store, default_dsn) == 0 && (rc = store_file_private(p, err)) != DPS_OK)
        goto out;
    key = xstrdup(cs->key);
    if ((rc = sync_store(cfg->store, &d->id_scope, &key, err)) != DPS_OK)
        goto out;
    if (strcmp(key, cs->key) != 0) {
        OPENSSL_cleanse(d->connection_string, strlen(d->connection_string));
        free(d->connection_string);
        d->connection_string = make_connection_string(cs->host_name, key);
    }
    rc = DPS_OK;
out:
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    connstr_free(cs);
    free(p);
    return rc;
}

/*
 * Creates dir and its missing parents (mode 0700: the directory holds keys),
 * so `--data-dir var/dev` works in a fresh checkout. Returns 0 or -1 with
 * errno set.
 */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int datadir_open(const struct config *cfg, struct datadir *out, struct dps_error *err)
{
    struct datadir d = {0};
    struct stat st;
    bool initialised = false;
    int rc;

    if (make_dirs(cfg->data_dir) != 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot create data directory '%s': %s",
                             cfg->data_dir, strerror(errno));
    if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dps_error_set(err, DPS_ERR_IO, "data directory '%s' is not a directory",
                             cfg->data_dir);
    if ((rc = inspect(cfg->data_dir, &initialised, err)) != DPS_OK)
        return rc;
    if (!initialised) {
        if ((rc = initialise(cfg, err)) != DPS_OK)
            return rc;
        d.created = true;
    }
    if ((rc = load(cfg, &d, err)) != DPS_OK)
        goto fail;
    d.tls_ca = path_join(cfg->data_dir, "tls/ca.pem");
    d.tls_cert =
        cfg->tls_cert ? xstrdup(cfg->tls_cert) : path_join(cfg->data_dir, "tls/server.pem");
    d.tls_key = cfg->tls_key ? xstrdup(cfg->tls_key) : path_join(cfg->data_dir, "tls/server.key");
    *out = d;
    return DPS_OK;
fail:
    datadir_release(&d);
    return rc;
}
