/* SPDX-License-Identifier: MIT */
/*
 * dpsctl explain: asks dpsd what a device would get if it registered now,
 * and why, without registering it: by its certificate chain, or by its
 * registration id and symmetric key or SAS token.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/opts.h"
#include "core/pki.h"
#include "dps/service.h"

/* Largest chain file read. */
#define CHAIN_FILE_MAX (256 * 1024)

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void print_explanation(const json_t *e)
{
    const json_t *enr = json_object_get(e, "enrollment");
    const json_t *steps = json_object_get(json_object_get(e, "trace"), "steps");
    const json_t *v;
    char buf[64], who[600];
    size_t i;

    cli_print_field("Registration", str(e, "registrationId"));
    cli_print_field("Attestation", str(e, "attestationType"));
    cli_print_field("Decision", str(e, "decision"));
    snprintf(buf, sizeof(buf), "%lld",
             (long long)json_integer_value(json_object_get(e, "httpStatus")));
    cli_print_field("HTTP status", buf);
    if ((v = json_object_get(e, "errorCode"))) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        cli_print_field("Error code", buf);
    }
    if (json_is_object(enr)) {
        snprintf(who, sizeof(who), "%s '%s'", str(enr, "kind") ? str(enr, "kind") : "",
                 str(enr, "id") ? str(enr, "id") : "");
        cli_print_field("Enrollment", who);
    }
    cli_print_field("Hub", str(e, "assignedHub"));
    cli_print_field("Device id", str(e, "deviceId"));
    cli_print_field("Device sees", str(e, "deviceMessage"));
    cli_print_field("Why", str(e, "summary"));
    if (json_array_size(steps)) {
        printf("\nTrace:\n");
        json_array_foreach(steps, i, v)
        {
            printf("  %zu. %s\n", i + 1, json_string_value(v) ? json_string_value(v) : "");
        }
    }
}

static int run_explain(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *id = a->val[OPT_REGISTRATION_ID];
    const char *key = a->val[OPT_SYMMETRIC_KEY];
    const char *token = a->val[OPT_SAS_TOKEN];
    char *chain = NULL, *body = NULL, *out = NULL;
    size_t len = 0;
    json_t *req = json_object(), *e;
    int forms = !!a->val[OPT_CHAIN] + !!key + !!token, rc = CLI_FAILED;

    if (!req) {
        cli_errorf("out of memory");
        return CLI_FAILED;
    }
    if (forms != 1) {
        cli_errorf("explain: give one of --chain FILE, --symmetric-key KEY or --sas-token TOKEN");
        rc = CLI_USAGE;
        goto out;
    }
    if (!a->val[OPT_CHAIN] && !id) {
        cli_errorf("explain: --registration-id is required with --symmetric-key or --sas-token");
        rc = CLI_USAGE;
        goto out;
    }
    if (a->val[OPT_CHAIN]) {
        if (pki_file_read(a->val[OPT_CHAIN], CHAIN_FILE_MAX, &chain, &len, &err) != DPS_OK) {
            rc = cli_fail(&err);
            goto out;
        }
        json_object_set_new(req, "certificateChain", json_stringn(chain, len));
    }
    if (id)
        json_object_set_new(req, "registrationId", json_string(id));
    if (key)
        json_object_set_new(req, "symmetricKey", json_string(key));
    if (token)
        json_object_set_new(req, "sasToken", json_string(token));
    if (!(body = json_dumps(req, JSON_COMPACT))) {
        cli_errorf("'%s' is not UTF-8 text", a->val[OPT_CHAIN] ? a->val[OPT_CHAIN] : "input");
        goto out;
    }
    if (dps_explain(c, body, &out, &err) != DPS_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    e = json_loads(out, 0, NULL);
    if (a->set[OPT_JSON] || !json_is_object(e))
        cli_print_json(out);
    else
        print_explanation(e);
    /* The exit status says whether the device would be assigned, for scripts. */
    rc = json_is_object(e) && str(e, "decision") && strcmp(str(e, "decision"), "assigned") == 0
             ? CLI_OK
             : CLI_FAILED;
    json_decref(e);
out:
    if (body) {
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
    free(chain);
    free(out);
    json_decref(req);
    return rc;
}

static const enum cli_opt explain_opts[] = {OPT_CHAIN, OPT_REGISTRATION_ID, OPT_SYMMETRIC_KEY,
                                            OPT_SAS_TOKEN, OPT_END};
static const struct cli_sub explain_subs[] = {
    {"device",
     "--chain FILE [--registration-id ID] | --registration-id ID (--symmetric-key KEY | "
     "--sas-token TOKEN) [options]",
     "Show the decision a device would get if it registered now, with the full trace\n"
     "(enrollments considered, the chain path, the failing link and the fix). Nothing is\n"
     "registered or recorded. --chain is the device's PEM chain, leaf first (as\n"
     "'dpsctl cert create-device' writes PREFIX.chain.pem); the registration id is then\n"
     "its CN unless given. --symmetric-key is the device's own (derived) key. Needs the\n"
     "EnrollmentRead right. Exit status 0 when the device would be assigned, 1 otherwise.",
     explain_opts, false, false, run_explain},
};

int cmd_explain(int argc, char **argv)
{
    char *args[64];
    int n = 0;

    /* "dpsctl explain --chain F" reads better than "dpsctl explain device --chain F": accept both.
     */
    if (argc >= 2 && strncmp(argv[1], "--", 2) == 0 && strcmp(argv[1], "--help") != 0) {
        if (argc > (int)ARRAY_SIZE(args) - 2) {
            cli_errorf("explain: too many arguments");
            return CLI_USAGE;
        }
        args[n++] = argv[0];
        args[n++] = "device";
        for (int i = 1; i < argc; i++)
            args[n++] = argv[i];
        return cli_group_run("explain", "Explain what a device would get, and why.", explain_subs,
                             ARRAY_SIZE(explain_subs), n, args);
    }
    return cli_group_run("explain", "Explain what a device would get, and why.", explain_subs,
                         ARRAY_SIZE(explain_subs), argc, argv);
}
