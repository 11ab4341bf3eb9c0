/*
 * test_config.c: the config file — every key loaded, ${VAR} expansion,
 * credentials and options folded into percent-encoded URIs, paths relative
 * to the file, errors at file:line:col, and `vigil run --config` with flags
 * that win over the file.
 * Owns: expectations on engine/config.c and the --config paths of cli.c.
 * Must never: depend on files outside the temp dir and the source tree, or
 * on environment variables it did not set itself.
 */
#include "vgtest.h"
#include "engine/config.h"
#include "engine/uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Load @p text written as @p name in the temp dir; diagnostics printed into @p msgs (caller frees). */
static int load(struct vg_config *c, const char *name, const char *text, char **msgs)
{
    const char *path = vgt_write(name, text);
    struct vg_diags d;
    vg_diags_init(&d);
    int rc = vg_config_load(c, path, &d);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vg_diags_print(&d, f);
    fclose(f);
    vg_diags_fini(&d);
    *msgs = buf;
    return rc;
}

/* "name:line:col: message" with the temp dir in front of name. */
static char *at(const char *name, const char *rest)
{
    char *p = vgt_path(name);
    size_t n = strlen(p) + strlen(rest) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s:%s", p, rest);
    free(p);
    return s;
}

START_TEST(loads_every_key)
{
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "all.yaml",
                  "version: 1\n"
                  "rules: [/r/a.yaml, /r/dir]\n"
                  "registry: /etc/vigil/registry.yaml\n"
                  "threads: 4\n"
                  "lateness: 30s\n"
                  "checkpoint_interval: 1500ms\n"
                  "start: \"2026-11-23T08:00:00+08:00\"\n"
                  "until: 1795420800000\n"
                  "summary: true\n"
                  "input: mqtt://broker.example:1883/plants/+/telemetry\n"
                  "alerts: { uri: \"kafka://k1:9092,k2:9092/vigil.alerts\", options: { acks: all, linger: 5ms } }\n"
                  "sms: { uri: redis://redis.example:6379/vigil.sms, options: { maxlen: 100000 } }\n"
                  "dead_letter: \"-\"\n"
                  "state: memory\n"
                  "notify: { daily_cap_per_number: 20, digest_at: \"08:30\" }\n",
                  &msgs);
    ck_assert_msg(rc == 0, "%s", msgs);
    ck_assert_uint_eq(c.n_rules, 2);
    ck_assert_str_eq(c.rules[0], "/r/a.yaml");
    ck_assert_str_eq(c.rules[1], "/r/dir");
    ck_assert_ptr_null(c.rules[2]);
    ck_assert_str_eq(c.registry, "/etc/vigil/registry.yaml");
    ck_assert_int_eq(c.threads, 4);
    ck_assert_int_eq(c.lateness_ms, 30000);
    ck_assert_int_eq(c.checkpoint_ms, 1500);
    ck_assert_int_eq(c.start, 1795392000000);  /* 2026-11-23T00:00:00Z */
    ck_assert_int_eq(c.until, 1795420800000);
    ck_assert(c.summary);
    ck_assert_str_eq(c.input, "mqtt://broker.example:1883/plants/+/telemetry");
    ck_assert_str_eq(c.alerts, "kafka://k1:9092,k2:9092/vigil.alerts?acks=all&linger=5ms");
    ck_assert_str_eq(c.sms, "redis://redis.example:6379/vigil.sms?maxlen=100000");
    ck_assert_str_eq(c.dead_letter, "-");
    ck_assert_str_eq(c.state, "memory");
    ck_assert_int_eq(c.sms_daily_cap, 20);
    ck_assert_int_eq(c.sms_digest_minute, 8 * 60 + 30);
    /* positions of values, for messages */
    ck_assert_int_eq(c.pos[VG_CONF_RULES].line, 2);
    ck_assert_int_eq(c.pos[VG_CONF_RULES].col, 8);
    ck_assert_int_eq(c.pos[VG_CONF_ALERTS].line, 11);
    ck_assert_int_eq(c.pos[VG_CONF_ALERTS].col, 9);
    ck_assert_int_eq(c.pos[VG_CONF_NOTIFY].line, 15);
    for (int k = 0; k < VG_CONF_KEYS; k++)
        ck_assert_msg(vg_config_has(&c, (enum vg_config_key)k), "%s not set", vg_config_key_name(k));
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

START_TEST(defaults_when_unset)
{
    struct vg_config c;
    char *msgs;
    ck_assert_int_eq(load(&c, "min.yaml", "version: 1\n", &msgs), 0);
    ck_assert_ptr_null(c.rules);
    ck_assert_ptr_null(c.registry);
    ck_assert_ptr_null(c.input);
    ck_assert_ptr_null(c.alerts);
    ck_assert_ptr_null(c.sms);
    ck_assert_ptr_null(c.dead_letter);
    ck_assert_ptr_null(c.state);
    ck_assert_int_eq(c.threads, 0);
    ck_assert_int_eq(c.lateness_ms, 0);
    ck_assert_int_eq(c.checkpoint_ms, 1000);
    ck_assert(c.start == VG_TS_NONE && c.until == VG_TS_NONE);
    ck_assert(!c.summary);
    ck_assert_int_eq(c.sms_daily_cap, 0);
    ck_assert_int_eq(c.sms_digest_minute, 480);
    for (int k = 0; k < VG_CONF_KEYS; k++)
        ck_assert(!vg_config_has(&c, (enum vg_config_key)k));
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

struct env_case {
    const char *value;  /* YAML scalar for `registry:` (absolute, so no directory is prefixed) */
    const char *want;
};

static const struct env_case env_cases[] = {
    {"/etc/${VGT_DIR}/r.yaml", "/etc/vigil/r.yaml"},
    {"\"/${VGT_DIR}${VGT_DIR}\"", "/vigilvigil"},
    {"/x/${VGT_UNSET:-fallback}", "/x/fallback"},
    {"/x/${VGT_EMPTY:-fallback}", "/x/fallback"},       /* empty counts as unset with :- */
    {"/x/${VGT_DIR:-fallback}", "/x/vigil"},
    {"/x/${VGT_UNSET:-}y", "/x/y"},
    {"/x/$${VGT_DIR}", "/x/${VGT_DIR}"},                /* $${ is a literal ${ */
    {"/x/$VGT_DIR/$", "/x/$VGT_DIR/$"},                 /* only ${ starts a variable */
    {"/x/${VGT_SPECIAL}", "/x/a b&c=d"},                /* values are not re-expanded */
};

START_TEST(env_expansion)
{
    setenv("VGT_DIR", "vigil", 1);
    setenv("VGT_EMPTY", "", 1);
    setenv("VGT_SPECIAL", "a b&c=d", 1);
    unsetenv("VGT_UNSET");
    const struct env_case *e = &env_cases[_i];
    char text[256];
    snprintf(text, sizeof text, "version: 1\nregistry: %s\n", e->value);
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "env.yaml", text, &msgs);
    ck_assert_msg(rc == 0, "%s: %s", e->value, msgs);
    ck_assert_str_eq(c.registry, e->want);
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

START_TEST(env_expansion_in_every_kind_of_value)
{
    setenv("VGT_THREADS", "3", 1);
    setenv("VGT_LATE", "2s", 1);
    setenv("VGT_ON", "true", 1);
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "env2.yaml",
                  "version: 1\nthreads: ${VGT_THREADS}\nlateness: ${VGT_LATE}\nsummary: ${VGT_ON}\n"
                  "notify: { daily_cap_per_number: \"${VGT_THREADS}0\" }\n", &msgs);
    ck_assert_msg(rc == 0, "%s", msgs);
    ck_assert_int_eq(c.threads, 3);
    ck_assert_int_eq(c.lateness_ms, 2000);
    ck_assert(c.summary);
    ck_assert_int_eq(c.sms_daily_cap, 30);
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

START_TEST(missing_variable_is_named)
{
    unsetenv("VGT_NOPE");
    unsetenv("VGT_NOPE2");
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "miss.yaml",
                  "version: 1\n"
                  "state:\n"
                  "  uri: redis://r:6379/0\n"
                  "  password: ${VGT_NOPE}\n"
                  "input: \"mqtt://h:1883/t?x=${VGT_NOPE2}\"\n", &msgs);
    ck_assert_int_eq(rc, VG_EINVAL);
    /* each missing variable, at the '$' that names it (inside the quotes) */
    char *a = at("miss.yaml", "4:13: state.password: environment variable VGT_NOPE is not set");
    char *b = at("miss.yaml", "5:27: input: environment variable VGT_NOPE2 is not set");
    ck_assert_msg(strstr(msgs, a) != NULL, "%s", msgs);
    ck_assert_msg(strstr(msgs, b) != NULL, "%s", msgs);
    /* an invalid config leaves nothing set */
    ck_assert_ptr_null(c.state);
    ck_assert_ptr_null(c.input);
    ck_assert_ptr_null(c.file);
    vg_config_fini(&c);
    free(a);
    free(b);
    free(msgs);
}
END_TEST

START_TEST(credentials_are_percent_encoded)
{
    /* a password with every character that would break a URI, and a user with a space */
    setenv("VGT_PW", "p@ss:w/rd%41?#&=+ 密", 1);
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "cred.yaml",
                  "version: 1\n"
                  "state:\n"
                  "  uri: redis://redis.example:6379/0\n"
                  "  username: ops team\n"
                  "  password: ${VGT_PW}\n"
                  "  options: { prefix: vg-js, timeout: 2s }\n"
                  "alerts:\n"
                  "  uri: kafka://k1:9092/vigil.alerts?acks=all\n"
                  "  options: { linger: 5ms, rdkafka.client.rack: \"r 1&2\", topic: [a, b] }\n"
                  "sms: { uri: \"redis://h:6379/s?\", password: \"\", options: { maxlen: 10 } }\n",
                  &msgs);
    ck_assert_msg(rc == 0, "%s", msgs);
    ck_assert_str_eq(c.state, "redis://ops%20team:p%40ss%3Aw%2Frd%2541%3F%23%26%3D%2B%20%E5%AF%86"
                              "@redis.example:6379/0?prefix=vg-js&timeout=2s");
    /* appended with & to the query the uri has; a list repeats the option */
    ck_assert_str_eq(c.alerts, "kafka://k1:9092/vigil.alerts?acks=all&linger=5ms"
                               "&rdkafka.client.rack=r%201%262&topic=a&topic=b");
    /* an empty password is left out; a uri ending in '?' takes the options as they are */
    ck_assert_str_eq(c.sms, "redis://h:6379/s?maxlen=10");

    /* the adapters' parser reads back exactly what was written */
    struct vg_uri u;
    struct vg_error err = {0};
    ck_assert_int_eq(vg_uri_parse(c.state, "state", &u, &err), 0);
    ck_assert_str_eq(u.user, "ops team");
    ck_assert_str_eq(u.password, "p@ss:w/rd%41?#&=+ 密");
    ck_assert_str_eq(u.host, "redis.example");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_str_eq(u.path, "0");
    ck_assert_str_eq(vg_uri_opt(&u, "prefix"), "vg-js");
    ck_assert_str_eq(vg_uri_opt(&u, "timeout"), "2s");
    vg_uri_fini(&u);
    ck_assert_int_eq(vg_uri_parse(c.alerts, "alerts", &u, &err), 0);
    ck_assert_str_eq(vg_uri_opt(&u, "rdkafka.client.rack"), "r 1&2");
    const char *topics[4];
    ck_assert_uint_eq(vg_uri_opts(&u, "topic", topics, 4), 2);
    ck_assert_str_eq(topics[1], "b");
    vg_uri_fini(&u);

    /* shown without secrets */
    char buf[256];
    ck_assert_str_eq(vg_config_endpoint_show(c.state, buf, sizeof buf),
                     "redis://redis.example:6379/0 (user, password, 2 options)");
    ck_assert_str_eq(vg_config_endpoint_show("redis://:pw@h:6379", buf, sizeof buf), "redis://h:6379 (password)");
    ck_assert_str_eq(vg_config_endpoint_show("/var/x.ndjson", buf, sizeof buf), "/var/x.ndjson");
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

START_TEST(relative_paths_resolve_against_the_config_directory)
{
    vgt_sh("mkdir -p '%s/etc/vigil'", vgt_dir());
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "etc/vigil/v.yaml",
                  "version: 1\n"
                  "rules: [rules/, /opt/extra.yaml, ../shared.yaml]\n"
                  "registry: registry.yaml\n"
                  "input: in/telemetry.ndjson\n"
                  "alerts: stdout\n"
                  "dead_letter: file://dead.ndjson\n"
                  "sms: { uri: sms.ndjson }\n"
                  "state: memory\n", &msgs);
    ck_assert_msg(rc == 0, "%s", msgs);
    char *dir = vgt_path("etc/vigil"), want[600];
    snprintf(want, sizeof want, "%s/rules/", dir);
    ck_assert_str_eq(c.rules[0], want);
    ck_assert_str_eq(c.rules[1], "/opt/extra.yaml");
    snprintf(want, sizeof want, "%s/../shared.yaml", dir);
    ck_assert_str_eq(c.rules[2], want);
    snprintf(want, sizeof want, "%s/registry.yaml", dir);
    ck_assert_str_eq(c.registry, want);
    snprintf(want, sizeof want, "%s/in/telemetry.ndjson", dir);
    ck_assert_str_eq(c.input, want);
    snprintf(want, sizeof want, "%s/dead.ndjson", dir);
    ck_assert_str_eq(c.dead_letter, want);
    snprintf(want, sizeof want, "%s/sms.ndjson", dir);
    ck_assert_str_eq(c.sms, want);
    ck_assert_str_eq(c.alerts, "stdout");  /* not a file named stdout */
    ck_assert_str_eq(c.state, "memory");
    vg_config_fini(&c);
    free(dir);
    free(msgs);
}
END_TEST

START_TEST(standard_streams_are_not_paths)
{
    vgt_sh("mkdir -p '%s/sub'", vgt_dir());
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "sub/s.yaml", "version: 1\ninput: stdin\nalerts: \"-\"\ndead_letter: stderr\nsms: stdout\n",
                  &msgs);
    ck_assert_msg(rc == 0, "%s", msgs);
    ck_assert_str_eq(c.input, "-");
    ck_assert_str_eq(c.alerts, "-");
    ck_assert_str_eq(c.dead_letter, "stderr");
    ck_assert_str_eq(c.sms, "stdout");
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

struct error_case {
    const char *text;
    const char *want;   /* after "<file>:" */
};

static const struct error_case error_cases[] = {
    {"version: 1\nthreds: 4\n",
     "2:1: unknown key 'threds' in config (expected one of: version, rules, registry, input, alerts, sms, "
     "dead_letter, state, threads, lateness, checkpoint_interval, start, until, summary, notify)"},
    {"version: 1\nalerts:\n  uri: kafka://k:9092/a\n  opts: { acks: all }\n",
     "4:3: unknown key 'opts' in alerts (expected one of: uri, username, password, options)"},
    {"version: 1\nnotify: { daily_cap: 3 }\n",
     "2:11: unknown key 'daily_cap' in notify (expected one of: daily_cap_per_number, digest_at)"},
    {"version: 1\nlateness: 30 sec\n", "2:11: bad duration '30 sec' for lateness:"},
    {"version: 1\ncheckpoint_interval: 0s\n", "2:22: checkpoint_interval must be longer than 0s"},
    {"version: 1\nthreads: 0\n", "2:10: threads must be a whole number from 1 to 64, not '0'"},
    {"version: 1\nthreads: [4]\n", "2:10: threads must be a single value, not a list"},
    {"version: 1\nstart: yesterday\n", "2:8: start must be epoch milliseconds or RFC 3339"},
    {"version: 1\nsummary: maybe\n", "2:10: summary must be true or false, not 'maybe'"},
    {"rules: r.yaml\n", "1:1: config needs 'version: 1'"},
    {"version: 2\n", "1:10: config version must be 1"},
    {"version: 1\nversion: 1\n", "2:1: duplicate key 'version' in config (first at line 1)"},
    {"- version: 1\n", "1:1: a config file is a mapping"},
    {"version: 1\nrules: []\n", "2:8: rules must name at least one file or directory"},
    {"version: 1\ninput: \"\"\n", "2:8: input must not be empty"},
    {"version: 1\nstate: { password: x }\n", "2:8: state needs 'uri'"},
    {"version: 1\nstate: { uri: \"redis://u:p@h:6379\", password: x }\n",
     "2:15: state.uri already has credentials (USER:PASSWORD@); give them in username and password instead"},
    {"version: 1\ndead_letter: { uri: dead.ndjson, options: { acks: all } }\n",
     "2:43: dead_letter: username, password and options apply to scheme:// endpoints; 'dead.ndjson' is a file"},
    {"version: 1\nalerts: { uri: kafka://k:9092/a, options: [acks] }\n", "2:43: alerts.options must be a mapping"},
    {"version: 1\nalerts: { uri: kafka://k:9092/a, options: { acks: } }\n",
     "2:51: alerts.options.acks has no value"},
    {"version: 1\nalerts: { uri: kafka://k:9092/a, options: { acks: { x: 1 } } }\n",
     "2:51: alerts.options.acks must be a single value, not a mapping"},
    {"version: 1\nstate: \"redis://:secret@h:99999/0\"\n",
     "2:8: bad state URI: the port must be 1-65535, not '99999'"},
    {"version: 1\nregistry: /x/${OOPS\n", "2:14: registry: '${' without a closing '}'"},
    {"version: 1\nregistry: /x/${1X}\n", "2:14: registry: bad variable '${1X}'"},
    {"version: 1\nnotify: { digest_at: \"8:30\" }\n", "2:22: notify.digest_at must be a local time HH:MM"},
    {"version: 1\nnotify: { digest_at: \"24:00\" }\n", "2:22: notify.digest_at must be a local time HH:MM"},
    {"version: 1\nnotify: { daily_cap_per_number: -1 }\n",
     "2:33: notify.daily_cap_per_number must be a whole number from 0 (no cap)"},
    {"version: 1\nnotify: on\n", "2:9: notify must be a mapping"},
    {"version: 1\nrules: [a.yaml\n", "3:1: YAML:"},
    /* the YAML trap: ${X} unquoted inside { } ends the mapping; the message says what to do */
    {"version: 1\nstate: { uri: redis://r:6379/0, password: ${REDIS_PASSWORD} }\n",
     "2:44: YAML: did not find expected ',' or '}' while parsing a flow mapping (inside { } write a ${NAME} "
     "value in quotes"},
};

START_TEST(errors_point_at_the_key)
{
    const struct error_case *e = &error_cases[_i];
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "bad.yaml", e->text, &msgs);
    char *want = at("bad.yaml", e->want);
    ck_assert_msg(rc == VG_EINVAL, "%s: status %d", e->text, rc);
    ck_assert_msg(strstr(msgs, want) != NULL, "want '%s' in:\n%s", want, msgs);
    ck_assert_msg(strstr(msgs, "secret") == NULL, "a password in a message:\n%s", msgs);
    vg_config_fini(&c);
    free(want);
    free(msgs);
}
END_TEST

START_TEST(every_error_is_reported)
{
    /* a user fixes them all in one round */
    struct vg_config c;
    char *msgs;
    int rc = load(&c, "many.yaml", "version: 1\nthreads: x\nlateness: 1y\nbogus: 1\nsummary: 2\n", &msgs);
    ck_assert_int_eq(rc, VG_EINVAL);
    int lines = 0;
    for (const char *p = msgs; *p; p++)
        lines += *p == '\n';
    ck_assert_msg(lines == 4, "%s", msgs);
    vg_config_fini(&c);
    free(msgs);
}
END_TEST

START_TEST(missing_file)
{
    struct vg_config c;
    struct vg_diags d;
    vg_diags_init(&d);
    ck_assert_int_eq(vg_config_load(&c, "/nonexistent/vigil.yaml", &d), VG_ENOENT);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_msg(strstr(d.v[0].msg, "cannot open the config file") != NULL, "%s", d.v[0].msg);
    vg_diags_fini(&d);
    vg_config_fini(&c);
}
END_TEST

static void set_deploy_env(void)
{
    setenv("MQTT_PASSWORD", "s3cret-mqtt", 1);
    setenv("KAFKA_PASSWORD", "s3cret-kafka", 1);
    setenv("REDIS_PASSWORD", "s3cret redis/1", 1);
}

START_TEST(deploy_example_loads)
{
    set_deploy_env();
    char path[600];
    snprintf(path, sizeof path, "%s/deploy/vigil.example.yaml", vgt_src());
    struct vg_config c;
    struct vg_diags d;
    vg_diags_init(&d);
    int rc = vg_config_load(&c, path, &d);
    vg_diags_print(&d, stderr);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(d.n, 0);
    char want[800];
    snprintf(want, sizeof want, "%s/deploy/rules/", vgt_src());
    ck_assert_str_eq(c.rules[0], want);
    ck_assert_str_eq(c.input, "mqtt://vigil:s3cret-mqtt@broker.example:1883/$share/vigil/plants/+/telemetry"
                              "?qos=1&client_id=vigil-1&clean=false&plant_level=2");
    ck_assert_str_eq(c.alerts, "kafka://vigil:s3cret-kafka@k1:9092,k2:9092,k3:9092/vigil.alerts"
                               "?acks=all&linger=5ms&compression=lz4&sasl_mechanism=SCRAM-SHA-512");
    ck_assert_str_eq(c.sms, "redis://:s3cret%20redis%2F1@redis.example:6379/vigil.sms?db=1&maxlen=100000");
    ck_assert_str_eq(c.dead_letter, "kafka://vigil:s3cret-kafka@k1:9092,k2:9092,k3:9092/vigil.dead"
                                    "?acks=all&sasl_mechanism=SCRAM-SHA-512");
    ck_assert_str_eq(c.state, "redis://:s3cret%20redis%2F1@redis.example:6379/0?prefix=vg-js&timeout=2s");
    ck_assert_int_eq(c.threads, 4);
    ck_assert_int_eq(c.lateness_ms, 30000);
    ck_assert_int_eq(c.checkpoint_ms, 1000);
    ck_assert_int_eq(c.sms_daily_cap, 20);
    ck_assert_int_eq(c.sms_digest_minute, 510);
    vg_diags_fini(&d);
    vg_config_fini(&c);
}
END_TEST

START_TEST(schema_examples_agree_with_the_loader)
{
    /* what the JSON Schema accepts, the loader accepts; what it rejects, the loader rejects */
    setenv("MQTT_PASSWORD", "x", 1);
    setenv("SMS_CAP", "20", 1);
    unsetenv("REDIS_PASSWORD");
    static const char *const files[] = {"config.valid.yaml", "config.unknown_key.invalid.yaml",
                                        "config.bad_duration.invalid.yaml",
                                        "config.endpoint_without_uri.invalid.yaml",
                                        "config.unquoted_digest.invalid.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/schemas/examples/%s", vgt_src(), files[i]);
        struct vg_config c;
        struct vg_diags d;
        vg_diags_init(&d);
        int rc = vg_config_load(&c, path, &d);
        bool valid = strstr(files[i], ".valid.") != NULL;
        vg_diags_print(&d, stderr);
        ck_assert_msg((rc == 0) == valid, "%s: status %d", files[i], rc);
        vg_diags_fini(&d);
        vg_config_fini(&c);
    }
}
END_TEST

/* ---- the vigil binary with --config ---- */

static int vigil(const char *args, char **out, char **err)
{
    char *o = vgt_path("out.txt"), *e = vgt_path("err.txt");
    int rc = vgt_sh("cd '%s' && '%s' %s >'%s' 2>'%s' </dev/null", vgt_dir(), vgt_bin(), args, o, e);
    *out = vgt_read(o, NULL);
    *err = vgt_read(e, NULL);
    free(o);
    free(e);
    return rc;
}

static const char *const hot_rule = "version: 1\nrules:\n  - id: hot\n    metric: t\n"
                                    "    grades: [ { level: red, when: value > 50 } ]\n";
static const char *const warm_rule = "version: 1\nrules:\n  - id: warm\n    metric: t\n"
                                     "    grades: [ { level: yellow, when: value > 10 } ]\n";
static const char *const input = "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"t\",\"value\":60,\"ts\":1000}\n"
                                 "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"t\",\"value\":\"hot\",\"ts\":2000}\n";

static void write_run_dir(void)
{
    vgt_sh("mkdir -p '%s/run'", vgt_dir());
    vgt_write("run/hot.yaml", hot_rule);
    vgt_write("run/warm.yaml", warm_rule);
    vgt_write("run/in.ndjson", input);
    /* every path relative to run/, the config's directory, not to the current one */
    vgt_write("run/vigil.yaml", "version: 1\n"
                                "rules: hot.yaml\n"
                                "input: in.ndjson\n"
                                "alerts: conf-alerts.ndjson\n"
                                "dead_letter: { uri: conf-dead.ndjson }\n"
                                "threads: 2\n");
}

START_TEST(run_takes_everything_from_the_config)
{
    write_run_dir();
    char *out, *err;
    int rc = vigil("run --config run/vigil.yaml", &out, &err);
    ck_assert_msg(rc == 0, "status %d: %s", rc, err);
    char *ap = vgt_path("run/conf-alerts.ndjson"), *dp = vgt_path("run/conf-dead.ndjson");
    char *alerts = vgt_read(ap, NULL), *dead = vgt_read(dp, NULL);
    ck_assert_msg(alerts && strstr(alerts, "\"rule\":\"hot\"") != NULL, "%s", alerts ? alerts : "(no file)");
    ck_assert_msg(dead && strstr(dead, "\"reason\":\"wrong_type\"") != NULL, "%s", dead ? dead : "(no file)");
    ck_assert_msg(strstr(out, "alert_id") == NULL, "alerts on stdout:\n%s", out);
    free(alerts);
    free(dead);
    free(ap);
    free(dp);
    free(out);
    free(err);
}
END_TEST

START_TEST(flags_override_the_config)
{
    write_run_dir();
    vgt_sh("rm -f '%s'/run/conf-*.ndjson", vgt_dir());
    char *out, *err;
    /* --dead-letter and --rules win; alerts still come from the file */
    int rc = vigil("run --config run/vigil.yaml --dead-letter flag-dead.ndjson --rules run/warm.yaml", &out, &err);
    ck_assert_msg(rc == 0, "status %d: %s", rc, err);
    char *fp = vgt_path("flag-dead.ndjson"), *cp = vgt_path("run/conf-dead.ndjson"),
         *ap = vgt_path("run/conf-alerts.ndjson");
    char *flag_dead = vgt_read(fp, NULL), *conf_dead = vgt_read(cp, NULL), *alerts = vgt_read(ap, NULL);
    ck_assert_msg(flag_dead && strstr(flag_dead, "\"reason\":\"wrong_type\"") != NULL, "%s",
                  flag_dead ? flag_dead : "(no file)");
    ck_assert_msg(conf_dead == NULL, "the config's dead-letter file was opened: %s", conf_dead);
    /* --rules replaced the config's list: warm fired, hot did not */
    ck_assert_msg(alerts && strstr(alerts, "\"rule\":\"warm\"") != NULL, "%s", alerts ? alerts : "(no file)");
    ck_assert_msg(strstr(alerts, "\"rule\":\"hot\"") == NULL, "%s", alerts);
    free(flag_dead);
    free(conf_dead);
    free(alerts);
    free(fp);
    free(cp);
    free(ap);
    free(out);
    free(err);
}
END_TEST

START_TEST(sms_flag_opens_the_sink)
{
    write_run_dir();
    char *out, *err;
    int rc = vigil("run --config run/vigil.yaml --sms sms.ndjson", &out, &err);
    ck_assert_msg(rc == 0, "status %d: %s", rc, err);
    char *sp = vgt_path("sms.ndjson");
    char *sms = vgt_read(sp, NULL);
    ck_assert_msg(sms != NULL, "--sms sms.ndjson was not opened");
    free(sms);
    free(sp);
    free(out);
    free(err);
    /* a bad --sms is reported as a flag's error */
    rc = vigil("run --config run/vigil.yaml --sms bogus://x", &out, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "vigil run: unknown output scheme 'bogus://'") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(config_errors_from_run)
{
    vgt_write("r.yaml", hot_rule);
    unsetenv("VGT_NOPE");
    vgt_write("c1.yaml", "version: 1\nrules: r.yaml\ninput: /dev/null\nstate:\n  uri: redis://127.0.0.1:1/0\n"
                         "  password: ${VGT_NOPE}\n");
    char *out, *err;
    int rc = vigil("run --config c1.yaml", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "c1.yaml:6:13: state.password: environment variable VGT_NOPE is not set") != NULL,
                  "%s", err);
    ck_assert_msg(strstr(err, "the config file has 1 error") != NULL, "%s", err);
    free(out);
    free(err);

    /* an adapter's refusal names the config key and its position; nothing connects first */
    vgt_write("c2.yaml", "version: 1\nrules: r.yaml\ninput: /dev/null\nstate:\n  uri: redis://127.0.0.1:1/0\n"
                         "  options: { prefx: vg }\n");
    rc = vigil("run --config c2.yaml", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "c2.yaml:5:3: state: ") != NULL && strstr(err, "unknown option 'prefx'") != NULL,
                  "%s", err);
    free(out);
    free(err);

    /* a path from the file that does not exist, at its key */
    vgt_write("c3.yaml", "version: 1\nrules: [r.yaml, nowhere/]\n");
    rc = vigil("run --config c3.yaml", &out, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "c3.yaml:2:8: rules: rule path 'nowhere/' does not exist") != NULL,
                  "%s", err);
    free(out);
    free(err);

    rc = vigil("run --config none.yaml", &out, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "config file 'none.yaml' does not exist") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(check_config_on_the_deploy_example)
{
    set_deploy_env();
    char args[800];
    snprintf(args, sizeof args, "check --config '%s/deploy/vigil.example.yaml'", vgt_src());
    char *out, *err;
    int rc = vigil(args, &out, &err);
    ck_assert_msg(rc == 0, "status %d: %s%s", rc, out, err);
    ck_assert_msg(strstr(out, "vigil.example.yaml OK") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  input: mqtt://broker.example:1883/$share/vigil/plants/+/telemetry "
                              "(user, password, 4 options)") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  notify: daily_cap_per_number 20, digest_at 08:30") != NULL, "%s", out);
    /* no secret is printed */
    ck_assert_msg(!strstr(out, "s3cret") && !strstr(err, "s3cret"), "%s%s", out, err);
    free(out);
    free(err);

    /* and without the variables, it names the first one missing (and opens nothing) */
    unsetenv("MQTT_PASSWORD");
    rc = vigil(args, &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "input.password: environment variable MQTT_PASSWORD is not set") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(check_config_and_rules_together)
{
    vgt_write("r.yaml", hot_rule);
    vgt_write("ok.yaml", "version: 1\nrules: r.yaml\nlateness: 5s\n");
    char *out, *err;
    int rc = vigil("check --config ok.yaml r.yaml", &out, &err);
    ck_assert_msg(rc == 0, "status %d: %s", rc, err);
    ck_assert_msg(strstr(out, "config ok.yaml OK") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "  lateness: 5s") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "1 rule OK") != NULL, "%s", out);
    free(out);
    free(err);
    vgt_write("bad.yaml", "version: 1\nlatenes: 5s\n");
    rc = vigil("check --config bad.yaml", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "bad.yaml:2:1: unknown key 'latenes' in config") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, loads_every_key);
    tcase_add_test(tc, defaults_when_unset);
    tcase_add_loop_test(tc, env_expansion, 0, (int)(sizeof env_cases / sizeof env_cases[0]));
    tcase_add_test(tc, env_expansion_in_every_kind_of_value);
    tcase_add_test(tc, missing_variable_is_named);
    tcase_add_test(tc, credentials_are_percent_encoded);
    tcase_add_test(tc, relative_paths_resolve_against_the_config_directory);
    tcase_add_test(tc, standard_streams_are_not_paths);
    tcase_add_loop_test(tc, errors_point_at_the_key, 0, (int)(sizeof error_cases / sizeof error_cases[0]));
    tcase_add_test(tc, every_error_is_reported);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, deploy_example_loads);
    tcase_add_test(tc, schema_examples_agree_with_the_loader);
    tcase_add_test(tc, run_takes_everything_from_the_config);
    tcase_add_test(tc, flags_override_the_config);
    tcase_add_test(tc, sms_flag_opens_the_sink);
    tcase_add_test(tc, config_errors_from_run);
    tcase_add_test(tc, check_config_on_the_deploy_example);
    tcase_add_test(tc, check_config_and_rules_together);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
