/* SPDX-License-Identifier: MIT */
/*
 * dpsctl enrollment-group and dpsctl enrollment: create, show, list, update
 * and delete enrollment groups and individual enrollments through libdps.
 * The two share everything but the id field, the attestation options and
 * the libdps calls, which one descriptor per kind holds.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <errno.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/opts.h"
#include "dps/service.h"

/* Largest initial twin file read, as the service's body limit. */
#define TWIN_FILE_MAX (96 * 1024)

struct kind {
    const char *label;    /* "enrollment group" */
    const char *id_field; /* "enrollmentGroupId" */
    enum cli_opt id_opt;
    int (*put)(struct dps_service_client *, const char *, const char *, const char *, char **,
               struct dps_error *);
    int (*get)(struct dps_service_client *, const char *, char **, struct dps_error *);
    int (*del)(struct dps_service_client *, const char *, const char *, struct dps_error *);
    int (*attestation)(struct dps_service_client *, const char *, char **, struct dps_error *);
    int (*query)(struct dps_service_client *, const struct dps_query *, struct dps_query_page *,
                 struct dps_error *);
};

static const struct kind group_kind = {
    "enrollment group",
    "enrollmentGroupId",
    OPT_ID,
    dps_enrollment_group_put,
    dps_enrollment_group_get,
    dps_enrollment_group_delete,
    dps_enrollment_group_attestation_get,
    dps_enrollment_group_query,
};

static const struct kind individual_kind = {
    "enrollment",
    "registrationId",
    OPT_REGISTRATION_ID,
    dps_enrollment_put,
    dps_enrollment_get,
    dps_enrollment_delete,
    dps_enrollment_attestation_get,
    dps_enrollment_query,
};

static const char *id_of(const struct kind *k, const struct cli_args *a)
{
    const char *id = a->val[k->id_opt] ? a->val[k->id_opt] : a->pos;

    if (!id)
        cli_errorf("no %s id given: use --%s", k->label,
                   k->id_opt == OPT_ID ? "id" : "registration-id");
    return id;
}

static const char *etag_of(const struct cli_args *a)
{
    return a->val[OPT_ETAG] ? a->val[OPT_ETAG] : a->val[OPT_IF_MATCH];
}

static json_t *parse_json(const char *text, const char *what)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);

    if (!root)
        cli_errorf("%s is not valid json: %s", what, jerr.text);
    return root;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- building bodies from options ---- */

/* The attestation the options ask for: 1 built into *out, 0 none asked, -1 error printed. */
static int attestation_from_args(const struct kind *k, const struct cli_args *a, json_t **out)
{
    struct dps_error err = {0};
    char *text = NULL;
    int given = 0, rc = 0;

    given += a->set[OPT_SIGNING_CERT] || a->set[OPT_CERT];
    given += a->set[OPT_CA_REF];
    given += a->set[OPT_SYMMETRIC_KEY];
    if (given == 0) {
        if (a->set[OPT_SECONDARY_KEY] || a->set[OPT_SECONDARY_CERT] ||
            a->set[OPT_SECONDARY_SIGNING_CERT]) {
            cli_errorf("a secondary key or certificate needs its primary too");
            return -1;
        }
        return 0;
    }
    if (given > 1) {
        cli_errorf("give one attestation: a certificate, --ca-ref or --symmetric-key");
        return -1;
    }
    if (a->set[OPT_SIGNING_CERT])
        rc = dps_attestation_x509_from_files(DPS_X509_SIGNING, a->val[OPT_SIGNING_CERT],
                                             a->val[OPT_SECONDARY_SIGNING_CERT], &text, &err);
    else if (a->set[OPT_CERT])
        rc = dps_attestation_x509_from_files(DPS_X509_CLIENT, a->val[OPT_CERT],
                                             a->val[OPT_SECONDARY_CERT], &text, &err);
    else if (a->set[OPT_CA_REF])
        rc = dps_attestation_ca_ref(a->val[OPT_CA_REF], NULL, &text, &err);
    else
        rc = dps_attestation_symmetric_key(a->val[OPT_SYMMETRIC_KEY], a->val[OPT_SECONDARY_KEY],
                                           &text, &err);
    if (rc != DPS_OK) {
        cli_fail(&err);
        return -1;
    }
    *out = parse_json(text, "attestation");
    free(text);
    (void)k;
    return *out ? 1 : -1;
}

static json_t *read_json_file(const char *path, const char *what)
{
    json_error_t jerr;
    struct stat st;
    json_t *root;

    if (stat(path, &st) != 0) {
        cli_errorf("cannot read %s '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    if (st.st_size > TWIN_FILE_MAX) {
        cli_errorf("%s '%s' is over %d bytes", what, path, TWIN_FILE_MAX);
        return NULL;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        cli_errorf("%s '%s' is not valid json: line %d: %s", what, path, jerr.line, jerr.text);
    else if (!json_is_object(root)) {
        cli_errorf("%s '%s' is not a json object", what, path);
        json_decref(root);
        root = NULL;
    }
    return root;
}

static bool one_of(const char *v, const char *const *set)
{
    for (; *set; set++) {
        if (!strcmp(v, *set))
            return true;
    }
    return false;
}

/* Sets the fields the options give on body. Returns CLI_OK or an exit status (message printed). */
static int apply_fields(const struct cli_args *a, json_t *body)
{
    static const char *const statuses[] = {"enabled", "disabled", NULL};
    static const char *const policies[] = {"hashed", "geoLatency", "static", "custom", NULL};
    static const char *const reprovision[] = {"never", "reset", "migrate", NULL};
    const char *v;
    int bad = 0;

    if ((v = a->val[OPT_PROVISIONING_STATUS])) {
        if (!one_of(v, statuses)) {
            cli_errorf("provisioning status '%s' is not enabled or disabled", v);
            return CLI_USAGE;
        }
        bad |= json_object_set_new(body, "provisioningStatus", json_string(v));
    }
    if ((v = a->val[OPT_ALLOCATION_POLICY])) {
        if (!one_of(v, policies)) {
            cli_errorf("allocation policy '%s' is not hashed, geoLatency, static or custom", v);
            return CLI_USAGE;
        }
        bad |= json_object_set_new(body, "allocationPolicy", json_string(v));
    }
    if (a->nhubs) {
        json_t *hubs = json_array();

        for (size_t i = 0; i < a->nhubs; i++)
            bad |= json_array_append_new(hubs, json_string(a->hubs[i]));
        bad |= json_object_set_new(body, "iotHubs", hubs);
    }
    if ((v = a->val[OPT_INITIAL_TWIN])) {
        json_t *twin = read_json_file(v, "initial twin");

        if (!twin)
            return CLI_FAILED;
        bad |= json_object_set_new(body, "initialTwin", twin);
    }
    if ((v = a->val[OPT_REPROVISION])) {
        if (!one_of(v, reprovision)) {
            cli_errorf("reprovision policy '%s' is not never, reset or migrate", v);
            return CLI_USAGE;
        }
        bad |= json_object_set_new(body, "reprovisionPolicy",
                                   json_pack("{s:b,s:b}", "updateHubAssignment",
                                             strcmp(v, "never") != 0, "migrateDeviceData",
                                             strcmp(v, "migrate") == 0));
    }
    if (a->set[OPT_EDGE] && a->set[OPT_NO_EDGE]) {
        cli_errorf("give either --edge or --no-edge");
        return CLI_USAGE;
    }
    if (a->set[OPT_EDGE] || a->set[OPT_NO_EDGE])
        bad |= json_object_set_new(body, "capabilities",
                                   json_pack("{s:b}", "iotEdge", a->set[OPT_EDGE]));
    if ((v = a->val[OPT_DEVICE_ID]))
        bad |= json_object_set_new(body, "deviceId", json_string(v));
    if (bad) {
        cli_errorf("out of memory");
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* ---- readable output ---- */

static const char *reprovision_name(const json_t *rp)
{
    if (!json_is_object(rp))
        return NULL;
    if (!json_is_true(json_object_get(rp, "updateHubAssignment")))
        return "never (keep the assigned hub)";
    return json_is_true(json_object_get(rp, "migrateDeviceData")) ? "migrate (move, keep data)"
                                                                  : "reset (move, reset data)";
}

static void print_cert(const char *label, const json_t *c)
{
    const json_t *info = json_object_get(c, "info");
    char line[512];

    if (!json_is_object(c))
        return;
    if (!json_is_object(info)) {
        cli_print_field(label, "(certificate, no info)");
        return;
    }
    snprintf(line, sizeof(line), "%s (sha256 %s, valid until %s)",
             str(info, "subjectName") ? str(info, "subjectName") : "?",
             str(info, "sha256Thumbprint") ? str(info, "sha256Thumbprint") : "?",
             str(info, "notAfterUtc") ? str(info, "notAfterUtc") : "?");
    cli_print_field(label, line);
}

static void print_attestation(const json_t *att)
{
    const char *type = str(att, "type");
    const json_t *x509 = json_object_get(att, "x509"), *sk = json_object_get(att, "symmetricKey");
    const json_t *certs;

    if (type && !strcmp(type, "x509") && json_is_object(x509)) {
        if ((certs = json_object_get(x509, "signingCertificates")) && json_is_object(certs)) {
            cli_print_field("Attestation", "x509 signing certificate");
        } else if ((certs = json_object_get(x509, "clientCertificates")) && json_is_object(certs)) {
            cli_print_field("Attestation", "x509 device certificate");
        } else if ((certs = json_object_get(x509, "caReferences")) && json_is_object(certs)) {
            cli_print_field("Attestation", "x509 CA reference");
            cli_print_field("  primary", str(certs, "primary"));
            cli_print_field("  secondary", str(certs, "secondary"));
            return;
        }
        print_cert("  primary", json_object_get(certs, "primary"));
        print_cert("  secondary", json_object_get(certs, "secondary"));
        return;
    }
    cli_print_field("Attestation", type && !strcmp(type, "symmetricKey") ? "symmetric key" : type);
    if (json_is_object(sk)) {
        cli_print_field("  primary key", str(sk, "primaryKey"));
        cli_print_field("  secondary key", str(sk, "secondaryKey"));
    }
}

static void print_enrollment(const struct kind *k, const json_t *e)
{
    const json_t *hubs = json_object_get(e, "iotHubs"), *twin = json_object_get(e, "initialTwin");
    const json_t *rs = json_object_get(e, "registrationState");
    char line[1024] = "";
    size_t len = 0, i;
    json_t *h;

    cli_print_field(k == &group_kind ? "Enrollment group" : "Registration id", str(e, k->id_field));
    cli_print_field("Device id", str(e, "deviceId"));
    print_attestation(json_object_get(e, "attestation"));
    cli_print_field("Provisioning", str(e, "provisioningStatus"));
    cli_print_field("Allocation",
                    str(e, "allocationPolicy") ? str(e, "allocationPolicy") : "service default");
    json_array_foreach(hubs, i, h)
    {
        if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? ", " : "",
                                    json_string_value(h) ? json_string_value(h) : "?");
    }
    cli_print_field("IoT hubs", len ? line : "all linked hubs");
    cli_print_field("Reprovision", reprovision_name(json_object_get(e, "reprovisionPolicy")));
    cli_print_field("IoT Edge",
                    json_is_true(json_object_get(json_object_get(e, "capabilities"), "iotEdge"))
                        ? "yes"
                        : "no");
    if (json_is_object(twin)) {
        char *t = json_dumps(twin, JSON_COMPACT);

        cli_print_field("Initial twin", t);
        free(t);
    }
    if (json_is_object(rs)) {
        snprintf(line, sizeof(line), "%s%s%s", str(rs, "status") ? str(rs, "status") : "?",
                 str(rs, "assignedHub") ? " to " : "",
                 str(rs, "assignedHub") ? str(rs, "assignedHub") : "");
        cli_print_field("Registration", line);
    }
    cli_print_field("Etag", str(e, "etag"));
    cli_print_field("Created", str(e, "createdDateTimeUtc"));
    cli_print_field("Updated", str(e, "lastUpdatedDateTimeUtc"));
}

/* Prints a result: JSON as is with --json, else readable. Returns CLI_OK. */
static int print_result(const struct kind *k, const struct cli_args *a, const char *text)
{
    json_t *e;

    if (a->set[OPT_JSON]) {
        cli_print_json(text);
        return CLI_OK;
    }
    e = parse_json(text, "the server's answer");
    if (!e)
        return CLI_FAILED;
    print_enrollment(k, e);
    json_decref(e);
    return CLI_OK;
}

/* ---- subcommands ---- */

static int put_body(const struct kind *k, struct dps_service_client *c, const struct cli_args *a,
                    const char *id, json_t *body, const char *if_match)
{
    struct dps_error err = {0};
    char *text = json_dumps(body, JSON_COMPACT), *out = NULL;
    int rc;

    if (!text) {
        cli_errorf("out of memory");
        return CLI_FAILED;
    }
    rc = k->put(c, id, text, if_match, &out, &err);
    free(text);
    if (rc != DPS_OK)
        return cli_fail(&err);
    rc = print_result(k, a, out);
    free(out);
    return rc;
}

static int do_create(const struct kind *k, struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *id = id_of(k, a);
    json_t *body = NULL, *att = NULL;
    char *existing = NULL;
    int rc;

    if (!id)
        return CLI_USAGE;
    rc = attestation_from_args(k, a, &att);
    if (rc == 0) {
        cli_errorf("no attestation given: use %s, --ca-ref or --symmetric-key",
                   k == &group_kind ? "--signing-cert" : "--cert");
        return CLI_USAGE;
    }
    if (rc < 0)
        return CLI_FAILED;
    body = json_pack("{s:s,s:o}", k->id_field, id, "attestation", att);
    if (!body) {
        cli_errorf("out of memory");
        return CLI_FAILED;
    }
    rc = apply_fields(a, body);
    if (rc != CLI_OK)
        goto out;
    /* PUT is an upsert: refuse to replace an existing object under the name "create". */
    rc = k->get(c, id, &existing, &err);
    if (rc == DPS_OK) {
        cli_errorf("%s '%s' exists already (use update)", k->label, id);
        rc = CLI_CONFLICT;
        goto out;
    }
    if (rc != DPS_ERR_NOT_FOUND) {
        rc = cli_fail(&err);
        goto out;
    }
    rc = put_body(k, c, a, id, body, NULL);
out:
    free(existing);
    json_decref(body);
    return rc;
}

static int do_show(const struct kind *k, struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *id = id_of(k, a);
    char *out = NULL, *att = NULL;
    json_t *e = NULL, *m = NULL;
    int rc;

    if (!id)
        return CLI_USAGE;
    if (k->get(c, id, &out, &err) != DPS_OK)
        return cli_fail(&err);
    if (!a->set[OPT_SHOW_KEYS]) {
        rc = print_result(k, a, out);
        goto out;
    }
    if (k->attestation(c, id, &att, &err) != DPS_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    e = parse_json(out, "the server's answer");
    m = parse_json(att, "the server's attestation");
    if (!e || !m || json_object_set(e, "attestation", m)) {
        rc = CLI_FAILED;
        goto out;
    }
    if (a->set[OPT_JSON]) {
        char *s = json_dumps(e, JSON_INDENT(2));

        puts(s ? s : "");
        free(s);
    } else {
        print_enrollment(k, e);
    }
    rc = CLI_OK;
out:
    json_decref(e);
    json_decref(m);
    free(out);
    free(att);
    return rc;
}

static const struct kind *current_kind;

static int query_adapter(struct dps_service_client *c, const char *arg, const struct dps_query *q,
                         struct dps_query_page *p, struct dps_error *err)
{
    (void)arg;
    return current_kind->query(c, q, p, err);
}

static void print_row(const json_t *e)
{
    const json_t *att = json_object_get(e, "attestation");

    printf("%-40s %-14s %-9s %s\n",
           str(e, current_kind->id_field) ? str(e, current_kind->id_field) : "?",
           str(att, "type") ? str(att, "type") : "?",
           str(e, "provisioningStatus") ? str(e, "provisioningStatus") : "?",
           str(e, "lastUpdatedDateTimeUtc") ? str(e, "lastUpdatedDateTimeUtc") : "");
}

static int do_list(const struct kind *k, struct dps_service_client *c, const struct cli_args *a)
{
    current_kind = k;
    if (!a->set[OPT_JSON])
        printf("%-40s %-14s %-9s %s\n", k == &group_kind ? "ENROLLMENT GROUP" : "REGISTRATION ID",
               "ATTESTATION", "STATUS", "UPDATED");
    return cli_list_pages(c, a, query_adapter, NULL, print_row);
}

/*
 * update = read, change the given fields, write back with If-Match of what
 * was read, so a concurrent change is not overwritten silently.
 */
static int do_update(const struct kind *k, struct dps_service_client *c, const struct cli_args *a)
{
    static const char *const read_only[] = {"etag", "createdDateTimeUtc", "lastUpdatedDateTimeUtc",
                                            "registrationState"};
    struct dps_error err = {0};
    const char *id = id_of(k, a), *if_match;
    char *out = NULL, *att_text = NULL;
    json_t *body = NULL, *att = NULL;
    char *etag = NULL;
    int rc;

    if (!id)
        return CLI_USAGE;
    rc = attestation_from_args(k, a, &att);
    if (rc < 0)
        return CLI_FAILED;
    if (k->get(c, id, &out, &err) != DPS_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    body = parse_json(out, "the server's answer");
    if (!json_is_object(body)) {
        rc = CLI_FAILED;
        goto out;
    }
    etag = str(body, "etag") ? strdup(str(body, "etag")) : NULL;
    if (!att) {
        /* Reads omit symmetric keys: write back the real ones, or the server would make new ones.
         */
        const char *type = str(json_object_get(body, "attestation"), "type");

        if (type && !strcmp(type, "symmetricKey")) {
            if (k->attestation(c, id, &att_text, &err) != DPS_OK) {
                rc = cli_fail(&err);
                goto out;
            }
            att = parse_json(att_text, "the server's attestation");
            if (!att) {
                rc = CLI_FAILED;
                goto out;
            }
        }
    }
    if (att && json_object_set_new(body, "attestation", att)) {
        att = NULL;
        rc = CLI_FAILED;
        goto out;
    }
    att = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(read_only); i++)
        json_object_del(body, read_only[i]);
    rc = apply_fields(a, body);
    if (rc != CLI_OK)
        goto out;
    if_match = etag_of(a) ? etag_of(a) : etag;
    rc = put_body(k, c, a, id, body, if_match);
out:
    json_decref(att);
    json_decref(body);
    free(etag);
    free(out);
    free(att_text);
    return rc;
}

static int do_delete(const struct kind *k, struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *id = id_of(k, a);

    if (!id)
        return CLI_USAGE;
    if (k->del(c, id, etag_of(a), &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON])
        printf("{\"deleted\":true}\n");
    else
        printf("deleted %s '%s'\n", k->label, id);
    return CLI_OK;
}

#define WRAP(kind, verb, fn)                                                                       \
    static int kind##_##verb(struct dps_service_client *c, const struct cli_args *a)               \
    {                                                                                              \
        return fn(&kind##_kind, c, a);                                                             \
    }

WRAP(group, create, do_create)
WRAP(group, show, do_show)
WRAP(group, list, do_list)
WRAP(group, update, do_update)
WRAP(group, delete, do_delete)
WRAP(individual, create, do_create)
WRAP(individual, show, do_show)
WRAP(individual, list, do_list)
WRAP(individual, update, do_update)
WRAP(individual, delete, do_delete)

#define COMMON_FIELDS                                                                              \
    OPT_PROVISIONING_STATUS, OPT_ALLOCATION_POLICY, OPT_IOT_HUB, OPT_INITIAL_TWIN,                 \
        OPT_REPROVISION, OPT_EDGE, OPT_NO_EDGE
#define GROUP_ATTESTATION                                                                          \
    OPT_SIGNING_CERT, OPT_SECONDARY_SIGNING_CERT, OPT_CA_REF, OPT_SYMMETRIC_KEY, OPT_SECONDARY_KEY
#define INDIVIDUAL_ATTESTATION OPT_CERT, OPT_SECONDARY_CERT, OPT_SYMMETRIC_KEY, OPT_SECONDARY_KEY

static const enum cli_opt group_create_opts[] = {OPT_ID, GROUP_ATTESTATION, COMMON_FIELDS, OPT_END};
static const enum cli_opt group_update_opts[] = {OPT_ID,   GROUP_ATTESTATION, COMMON_FIELDS,
                                                 OPT_ETAG, OPT_IF_MATCH,      OPT_END};
static const enum cli_opt group_show_opts[] = {OPT_ID, OPT_SHOW_KEYS, OPT_END};
static const enum cli_opt group_delete_opts[] = {OPT_ID, OPT_ETAG, OPT_IF_MATCH, OPT_END};
static const enum cli_opt list_opts[] = {OPT_PAGE_SIZE, OPT_MAX, OPT_END};
static const enum cli_opt ind_create_opts[] = {OPT_REGISTRATION_ID, INDIVIDUAL_ATTESTATION,
                                               OPT_DEVICE_ID, COMMON_FIELDS, OPT_END};
static const enum cli_opt ind_update_opts[] = {OPT_REGISTRATION_ID,
                                               INDIVIDUAL_ATTESTATION,
                                               OPT_DEVICE_ID,
                                               COMMON_FIELDS,
                                               OPT_ETAG,
                                               OPT_IF_MATCH,
                                               OPT_END};
static const enum cli_opt ind_show_opts[] = {OPT_REGISTRATION_ID, OPT_SHOW_KEYS, OPT_END};
static const enum cli_opt ind_delete_opts[] = {OPT_REGISTRATION_ID, OPT_ETAG, OPT_IF_MATCH,
                                               OPT_END};

static const struct cli_sub group_subs[] = {
    {"create", "--id ID (--signing-cert FILE | --ca-ref NAME | --symmetric-key [KEY]) [options]",
     "Create an enrollment group. Devices whose certificate chain leads to the signing\n"
     "certificate (or that hold a key derived from the group key) may register.",
     group_create_opts, true, false, group_create},
    {"show", "--id ID [--show-keys] [options]", "Show an enrollment group.", group_show_opts, true,
     false, group_show},
    {"list", "[--page-size N] [--max N] [options]",
     "List the enrollment groups, reading every page.", list_opts, false, false, group_list},
    {"update", "--id ID [options]",
     "Change the given fields of an enrollment group. The group is read and written back\n"
     "with If-Match of the etag read (or of --etag), so a concurrent change is refused.",
     group_update_opts, true, false, group_update},
    {"delete", "--id ID [--etag ETAG] [options]", "Delete an enrollment group.", group_delete_opts,
     true, false, group_delete},
};

static const struct cli_sub individual_subs[] = {
    {"create", "--registration-id ID (--cert FILE | --symmetric-key [KEY]) [options]",
     "Create an individual enrollment for one device.", ind_create_opts, true, false,
     individual_create},
    {"show", "--registration-id ID [--show-keys] [options]", "Show an individual enrollment.",
     ind_show_opts, true, false, individual_show},
    {"list", "[--page-size N] [--max N] [options]",
     "List the individual enrollments, reading every page.", list_opts, false, false,
     individual_list},
    {"update", "--registration-id ID [options]",
     "Change the given fields of an individual enrollment (read, then write back with\n"
     "If-Match of the etag read, or of --etag).",
     ind_update_opts, true, false, individual_update},
    {"delete", "--registration-id ID [--etag ETAG] [options]", "Delete an individual enrollment.",
     ind_delete_opts, true, false, individual_delete},
};

int cmd_enrollment_group(int argc, char **argv)
{
    return cli_group_run("enrollment-group", "Manage enrollment groups.", group_subs,
                         ARRAY_SIZE(group_subs), argc, argv);
}

int cmd_enrollment(int argc, char **argv)
{
    return cli_group_run("enrollment", "Manage individual enrollments.", individual_subs,
                         ARRAY_SIZE(individual_subs), argc, argv);
}
