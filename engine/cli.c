/*
 * cli.c: parses flags from declarative tables, prints help from the same
 * tables, and runs the commands.
 * Owns: argument parsing and user-facing messages on stderr. Must never: run
 * a pipeline with a half-valid configuration.
 * DESIGN: `vigil run --config FILE` loads the file (engine/config.c) and then
 * lets every flag given on the command line win over the file's value
 * (`--rules` replaces the file's whole list). Each setting remembers where it
 * came from, so a message about a value from the file starts with
 * file:line:col: key: and one about a flag with `vigil run:`.
 */
#include "engine/cli.h"
#include "engine/clock.h"
#include "engine/config.h"
#include "engine/pipeline.h"
#include "engine/registry.h"
#include "engine/rule.h"
#include "engine/ruletest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct flag {
    const char *name;     /* without "--" */
    const char *arg;      /* metavariable, or NULL for a switch */
    const char *help;
};

static const struct flag check_flags[] = {
    {"registry", "FILE", "also check the rules against this registry (a `where` selecting no plant "
                         "is an error) and validate the registry itself"},
    {"config", "FILE", "validate a config file for vigil run (keys, values, environment variables, "
                       "URIs) without opening anything; PATH... may then be left out"},
    {"help", NULL, "show this help"},
    {NULL, NULL, NULL}};

static const struct flag run_flags[] = {
    {"config", "FILE", "configuration file (YAML; see deploy/vigil.example.yaml); flags given with "
                       "it win over its values, and --rules replaces its list"},
    {"rules", "PATH", "rule file or directory; repeatable (default: ./rules)"},
    {"registry", "FILE", "plants and regions (names, regions, industries, contacts, points)"},
    {"input", "FILE|-", "telemetry NDJSON, one message per line (default: - = stdin)"},
    {"alerts", "FILE|-", "where alerts go, one JSON object per line (default: - = stdout)"},
    {"sms", "FILE|URI", "where SMS requests go, one JSON object per line: a file, - or a URI "
                        "(default: none are made)"},
    {"dead-letter", "FILE", "where rejected input goes, with a reason (default: stderr)"},
    {"state", "URI", "state store: memory (default), or redis://[:PASSWORD@]HOST:PORT[/DB] "
                     "(checkpoints every second; a restart carries on from the last one)"},
    {"checkpoint-interval", "DUR", "with a state store: wall time between checkpoints (default 1s)"},
    {"threads", "N", "shard workers (default: the number of cores)"},
    {"lateness", "DUR", "allowed lateness of event time, e.g. 5s (default 0s): the clock is the "
                        "largest event time seen less this; older messages go to dead letters as late"},
    {"start", "TS", "start of the clock, epoch ms or RFC 3339 (default: the first event's time); "
                    "declared points that never report are counted from it"},
    {"until", "TS", "advance the clock to TS at the end of input, so absences are judged"},
    {"summary", NULL, "print per-rule counts, levels and the busiest plants to stderr at the end"},
    {"help", NULL, "show this help"},
    {NULL, NULL, NULL}};

static const struct flag test_flags[] = {{"help", NULL, "show this help"}, {NULL, NULL, NULL}};

struct command {
    const char *name, *usage, *summary;
    const struct flag *flags;
    int (*run)(int argc, char **argv);
};

static int cmd_check(int argc, char **argv);
static int cmd_run(int argc, char **argv);
static int cmd_test(int argc, char **argv);

static const struct command commands[] = {
    {"check", "vigil check [--registry FILE] PATH...\n       vigil check --config FILE [PATH...]",
     "Validate rule files and directories, or a config file; print every error as "
     "file:line:col: message.",
     check_flags, cmd_check},
    {"run", "vigil run [--config FILE] [--rules PATH]... [--registry FILE] [--input FILE|-]\n"
            "          [--alerts FILE|-] [--sms FILE|URI] [--dead-letter FILE] [--state URI]\n"
            "          [--threads N] [--lateness DUR] [--start TS] [--until TS] [--summary]\n"
            "          [--checkpoint-interval DUR]",
     "Apply the rules to telemetry and write graded alerts. With no flags: read stdin, load "
     "./rules, keep state in memory, write alerts to stdout.",
     run_flags, cmd_run},
    {"test", "vigil test PATH...",
     "Run rule unit tests: input messages and every alert they must raise (*.test.yaml).",
     test_flags, cmd_test},
    {NULL, NULL, NULL, NULL, NULL}};

static void print_help(FILE *out, const struct command *c)
{
    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", c->usage, c->summary);
    for (const struct flag *f = c->flags; f->name; f++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
        fprintf(out, "  %-22s %s\n", left, f->help);
    }
    fprintf(out, "\nexit status: 0 ok; 1 invalid rules, registry or config (or failed rule tests);\n"
                 "2 usage error or missing file; 3 input or output failure while running.\n");
}

static void print_main_help(FILE *out)
{
    fprintf(out, "usage: vigil COMMAND [OPTIONS]\n\n"
                 "vigil is a stream-processing early-warning engine for work-safety supervision.\n\n"
                 "commands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(out, "  %-7s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'vigil COMMAND --help' for a command's options. 'vigil --version' prints "
                 "the version.\n");
}

/* Parsed flags: values by flag index; "rules" may repeat. */
struct parsed {
    const char *value[32];
    bool set[32];
    const char *rules[64];
    int n_rules;
    char **pos;
    int n_pos;
};

static int parse_flags(const struct command *c, int argc, char **argv, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    p->pos = calloc((size_t)argc + 1, sizeof *p->pos);
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] != '-' ) {
            if (!only_pos && a[0] == '-' && a[1] != 0) {
                fprintf(stderr, "vigil %s: unknown option '%s' (see vigil %s --help)\n", c->name, a, c->name);
                return VG_EXIT_USAGE;
            }
            p->pos[p->n_pos++] = a;
            continue;
        }
        if (a[2] == 0) {
            only_pos = true;
            continue;
        }
        char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        int k = -1;
        for (int j = 0; c->flags[j].name; j++)
            if (strlen(c->flags[j].name) == nlen && !strncmp(c->flags[j].name, a + 2, nlen))
                k = j;
        if (k < 0) {
            fprintf(stderr, "vigil %s: unknown option '%.*s' (see vigil %s --help)\n", c->name,
                    (int)nlen + 2, a, c->name);
            return VG_EXIT_USAGE;
        }
        const struct flag *f = &c->flags[k];
        const char *val = NULL;
        if (f->arg) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                fprintf(stderr, "vigil %s: option --%s needs a value (%s)\n", c->name, f->name, f->arg);
                return VG_EXIT_USAGE;
            }
        } else if (eq) {
            fprintf(stderr, "vigil %s: option --%s takes no value\n", c->name, f->name);
            return VG_EXIT_USAGE;
        }
        if (!strcmp(f->name, "rules")) {
            if (p->n_rules == 64) {
                fprintf(stderr, "vigil %s: at most 64 --rules\n", c->name);
                return VG_EXIT_USAGE;
            }
            p->rules[p->n_rules++] = val;
        }
        p->value[k] = val;
        p->set[k] = true;
    }
    return VG_EXIT_OK;
}

static int flag_index(const struct command *c, const char *name)
{
    for (int j = 0; c->flags[j].name; j++)
        if (!strcmp(c->flags[j].name, name))
            return j;
    return -1;
}

static const char *get(const struct command *c, const struct parsed *p, const char *name)
{
    int k = flag_index(c, name);
    return k >= 0 ? p->value[k] : NULL;
}

static bool has(const struct command *c, const struct parsed *p, const char *name)
{
    int k = flag_index(c, name);
    return k >= 0 && p->set[k];
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int need_exists(const char *cmd, const char *what, const char *path)
{
    if (exists(path))
        return 0;
    fprintf(stderr, "vigil %s: %s '%s' does not exist\n", cmd, what, path);
    return -1;
}

static int load_registry(const char *cmd, const char *path, struct vg_registry **reg)
{
    if (!path) {
        *reg = vg_registry_empty();
        return VG_EXIT_OK;
    }
    struct vg_diags d;
    vg_diags_init(&d);
    if (vg_registry_load(reg, path, &d) < 0) {
        vg_diags_print(&d, stderr);
        fprintf(stderr, "vigil %s: the registry has %zu error%s\n", cmd, d.n, d.n == 1 ? "" : "s");
        vg_diags_fini(&d);
        return VG_EXIT_INVALID;
    }
    vg_diags_fini(&d);
    return VG_EXIT_OK;
}

static const struct command *find_command(const char *name)
{
    for (const struct command *c = commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

/*
 * The common start of a command over PATH...: flags, --help, at least one
 * path, every path exists. Sets *done when the command should end now with
 * the returned status.
 */
static int begin_paths(const struct command *c, int argc, char **argv, struct parsed *p,
                       const char *what, const char *path_what, bool *done)
{
    int rc = parse_flags(c, argc, argv, p);
    *done = true;
    if (rc == VG_EXIT_OK && has(c, p, "help")) {
        print_help(stdout, c);
        return VG_EXIT_OK;
    }
    if (rc)
        return rc;
    if (p->n_pos == 0) {
        fprintf(stderr, "vigil %s: give at least one %s\n", c->name, what);
        return VG_EXIT_USAGE;
    }
    for (int i = 0; i < p->n_pos; i++)
        if (need_exists(c->name, path_what, p->pos[i]) < 0)
            rc = VG_EXIT_USAGE;
    *done = rc != VG_EXIT_OK;
    return rc;
}

/* Load a config file into @p conf, printing every error. @returns an exit status. */
static int load_config(const char *cmd, const char *file, struct vg_config *conf)
{
    if (need_exists(cmd, "config file", file) < 0)
        return VG_EXIT_USAGE;
    struct vg_diags d;
    vg_diags_init(&d);
    int lrc = vg_config_load(conf, file, &d);
    vg_diags_print(&d, stderr);
    if (lrc == VG_EINVAL)
        fprintf(stderr, "vigil %s: the config file has %zu error%s\n", cmd, d.n, d.n == 1 ? "" : "s");
    else if (lrc == VG_ENOMEM)
        fprintf(stderr, "vigil %s: out of memory loading the config file\n", cmd);
    vg_diags_fini(&d);
    return lrc == VG_OK ? VG_EXIT_OK : lrc == VG_EINVAL ? VG_EXIT_INVALID
         : lrc == VG_ENOENT ? VG_EXIT_USAGE : VG_EXIT_IO;
}

/* What `vigil check --config` found: one line per key the file sets, no secrets. */
static void print_config(const struct vg_config *conf)
{
    char buf[1200];
    printf("vigil check: config %s OK\n", conf->file);
    if (conf->rules) {
        printf("  rules:");
        for (size_t i = 0; i < conf->n_rules; i++)
            printf(" %s", conf->rules[i]);
        printf("\n");
    }
    if (conf->registry)
        printf("  registry: %s\n", conf->registry);
    const struct {
        enum vg_config_key key;
        const char *uri;
    } eps[] = {{VG_CONF_INPUT, conf->input}, {VG_CONF_ALERTS, conf->alerts}, {VG_CONF_SMS, conf->sms},
               {VG_CONF_DEAD_LETTER, conf->dead_letter}, {VG_CONF_STATE, conf->state}};
    for (size_t i = 0; i < VG_ARRAY_LEN(eps); i++)
        if (eps[i].uri)
            printf("  %s: %s\n", vg_config_key_name(eps[i].key),
                   vg_config_endpoint_show(eps[i].uri, buf, sizeof buf));
    if (vg_config_has(conf, VG_CONF_THREADS))
        printf("  threads: %d\n", conf->threads);
    if (vg_config_has(conf, VG_CONF_LATENESS)) {
        vg_duration_format(conf->lateness_ms, buf, sizeof buf);
        printf("  lateness: %s\n", buf);
    }
    if (vg_config_has(conf, VG_CONF_CHECKPOINT_INTERVAL)) {
        vg_duration_format(conf->checkpoint_ms, buf, sizeof buf);
        printf("  checkpoint_interval: %s\n", buf);
    }
    if (vg_config_has(conf, VG_CONF_START)) {
        vg_rfc3339_format(conf->start, 480, buf, sizeof buf);
        printf("  start: %s\n", buf);
    }
    if (vg_config_has(conf, VG_CONF_UNTIL)) {
        vg_rfc3339_format(conf->until, 480, buf, sizeof buf);
        printf("  until: %s\n", buf);
    }
    if (vg_config_has(conf, VG_CONF_SUMMARY))
        printf("  summary: %s\n", conf->summary ? "true" : "false");
    if (vg_config_has(conf, VG_CONF_NOTIFY))
        printf("  notify: daily_cap_per_number %d%s, digest_at %02d:%02d (Asia/Shanghai)\n",
               conf->sms_daily_cap, conf->sms_daily_cap ? "" : " (no cap)", conf->sms_digest_minute / 60,
               conf->sms_digest_minute % 60);
}

/* `vigil check PATH...`: the rules (and --registry). @returns an exit status. */
static int check_rules(const struct command *c, const struct parsed *p)
{
    const char *regpath = get(c, p, "registry");
    struct vg_registry *reg = NULL;
    struct vg_diags d;
    vg_diags_init(&d);
    int rc = VG_EXIT_OK, reg_rc = VG_EXIT_OK;
    if (regpath && vg_registry_load(&reg, regpath, &d) < 0)
        reg_rc = VG_EXIT_INVALID;
    struct vg_ruleset *rs = NULL;
    vg_ruleset_load(&rs, (const char *const *)p->pos, (size_t)p->n_pos, reg, &d);
    if (d.n) {
        vg_diags_print(&d, stderr);
        fprintf(stderr, "vigil check: %zu error%s\n", d.n, d.n == 1 ? "" : "s");
        rc = VG_EXIT_INVALID;
    } else {
        if (reg) {
            /* set points a rule reads that a point lacks: not errors (the rule skips the
             * point), but an author wants to know */
            struct vg_diags notes;
            vg_diags_init(&notes);
            vg_ruleset_limit_gaps(rs, reg, &notes);
            vg_diags_print(&notes, stdout);
            vg_diags_fini(&notes);
        }
        printf("vigil check: %u rule%s OK", rs->n_rules, rs->n_rules == 1 ? "" : "s");
        if (reg)
            printf(" against %u plants in %u regions", reg->n_plants, reg->n_regions);
        printf("\n");
        rc = reg_rc;
    }
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
    vg_diags_fini(&d);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    const struct command *c = find_command("check");
    struct parsed p;
    int rc = parse_flags(c, argc, argv, &p);
    if (rc == VG_EXIT_OK && has(c, &p, "help")) {
        print_help(stdout, c);
        goto out;
    }
    if (rc)
        goto out;
    const char *cfile = get(c, &p, "config");
    if (p.n_pos == 0 && !cfile) {
        fprintf(stderr, "vigil check: give at least one rule file or directory (or --config FILE)\n");
        rc = VG_EXIT_USAGE;
        goto out;
    }
    for (int i = 0; i < p.n_pos; i++)
        if (need_exists(c->name, "rule path", p.pos[i]) < 0)
            rc = VG_EXIT_USAGE;
    const char *regpath = get(c, &p, "registry");
    if (regpath && need_exists("check", "registry", regpath) < 0)
        rc = VG_EXIT_USAGE;
    if (cfile && need_exists("check", "config file", cfile) < 0)
        rc = VG_EXIT_USAGE;
    if (rc)
        goto out;
    if (cfile) {
        /* the file alone: keys, values, variables, URI grammar; nothing is opened */
        struct vg_config conf;
        rc = load_config("check", cfile, &conf);
        if (rc == VG_EXIT_OK)
            print_config(&conf);
        vg_config_fini(&conf);
    }
    if (p.n_pos) {
        int rrc = check_rules(c, &p);
        if (!rc)
            rc = rrc;
    }
out:
    free(p.pos);
    return rc;
}

static int parse_ts_flag(const char *name, const char *v, vg_ts *out)
{
    if (vg_ts_parse(v, out) < 0) {
        fprintf(stderr, "vigil run: --%s '%s' is not epoch milliseconds or RFC 3339 "
                        "(e.g. 2026-11-23T08:00:00+08:00)\n", name, v);
        return -1;
    }
    return 0;
}

/* A value for `vigil run` and where it came from: a flag or the default (conf NULL), or a config key. */
struct setting {
    const char *value;
    const struct vg_config *conf;
    enum vg_config_key key;
};

/* The flag if given, else the config's value if set, else @p dflt. */
static struct setting pick(const struct command *c, const struct parsed *p, const char *flag,
                           const struct vg_config *conf, enum vg_config_key key, const char *conf_value,
                           const char *dflt)
{
    const char *v = get(c, p, flag);
    if (v)
        return (struct setting){v, NULL, key};
    if (conf_value)
        return (struct setting){conf_value, conf, key};
    return (struct setting){dflt, NULL, key};
}

/* A message about a setting: "file:line:col: key: ..." from the config, "vigil run: ..." from a flag. */
static void say(const struct setting *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct setting *s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->conf)
        fprintf(stderr, "%s:%d:%d: %s: %s\n", s->conf->file, s->conf->pos[s->key].line,
                s->conf->pos[s->key].col, vg_config_key_name(s->key), msg);
    else
        fprintf(stderr, "vigil run: %s\n", msg);
}

static int path_exists(const struct setting *s, const char *what, const char *path)
{
    if (exists(path))
        return 0;
    say(s, "%s '%s' does not exist", what, path);
    return -1;
}

/* An endpoint that would not open: the adapter's message, and the exit status for it. */
static int open_failed(const struct setting *s, int orc, const struct vg_error *err)
{
    say(s, "%s", err->msg);
    if (orc == VG_ENOENT)
        return VG_EXIT_USAGE;
    if (orc == VG_EUSAGE || orc == VG_EINVAL)
        return s->conf ? VG_EXIT_INVALID : VG_EXIT_USAGE;  /* a bad URI in the file: an invalid config */
    return VG_EXIT_IO;
}

static int cmd_run(int argc, char **argv)
{
    const struct command *c = find_command("run");
    struct parsed p;
    int rc = parse_flags(c, argc, argv, &p);
    struct vg_config conf;
    vg_config_init(&conf);
    struct vg_registry *reg = NULL;
    struct vg_ruleset *rs = NULL;
    struct vg_source_handle in = {0};
    struct vg_sink_handle alerts = {0}, dead = {0}, sms = {0};
    struct vg_store_handle store = {0};
    struct vg_error err = {0};
    if (rc == VG_EXIT_OK && has(c, &p, "help")) {
        print_help(stdout, c);
        goto out;
    }
    if (rc)
        goto out;
    if (p.n_pos) {
        fprintf(stderr, "vigil run: unexpected argument '%s' (input is given with --input)\n", p.pos[0]);
        rc = VG_EXIT_USAGE;
        goto out;
    }
    const char *cfile = get(c, &p, "config");
    if (cfile && (rc = load_config("run", cfile, &conf)))
        goto out;
    int threads = conf.threads;
    if (!threads) {
        threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
        threads = threads < 1 ? 1 : threads > VG_THREADS_MAX ? VG_THREADS_MAX : threads;
    }
    const char *v;
    if ((v = get(c, &p, "threads"))) {
        char *end;
        long t = strtol(v, &end, 10);
        if (*end || t < 1 || t > VG_THREADS_MAX) {
            fprintf(stderr, "vigil run: --threads must be 1..%d, not '%s'\n", VG_THREADS_MAX, v);
            rc = VG_EXIT_USAGE;
            goto out;
        }
        threads = (int)t;
    }
    vg_ts lateness = conf.lateness_ms, start = conf.start, until = conf.until, ckpt = conf.checkpoint_ms;
    const char *why;
    if ((v = get(c, &p, "checkpoint-interval")) &&
        (vg_duration_parse(v, strlen(v), &ckpt, &why) < 0 || ckpt <= 0)) {
        fprintf(stderr, "vigil run: --checkpoint-interval '%s': %s\n", v, ckpt <= 0 ? "must be longer than 0s" : why);
        rc = VG_EXIT_USAGE;
        goto out;
    }
    if ((v = get(c, &p, "lateness")) && vg_duration_parse(v, strlen(v), &lateness, &why) < 0) {
        fprintf(stderr, "vigil run: --lateness '%s': %s\n", v, why);
        rc = VG_EXIT_USAGE;
        goto out;
    }
    if (((v = get(c, &p, "start")) && parse_ts_flag("start", v, &start) < 0) ||
        ((v = get(c, &p, "until")) && parse_ts_flag("until", v, &until) < 0)) {
        rc = VG_EXIT_USAGE;
        goto out;
    }
    /* --rules replaces the config's whole list; neither: ./rules */
    static const char *default_rules[] = {"rules"};
    struct setting rules_from = {NULL, NULL, VG_CONF_RULES};
    const char *const *rules = default_rules;
    int n_rules = 1;
    if (p.n_rules) {
        rules = p.rules;
        n_rules = p.n_rules;
    } else if (conf.rules) {
        rules = (const char *const *)conf.rules;
        n_rules = (int)conf.n_rules;
        rules_from.conf = &conf;
    }
    for (int i = 0; i < n_rules; i++)
        if (path_exists(&rules_from, "rule path", rules[i]) < 0)
            rc = VG_EXIT_USAGE;
    struct setting s_reg = pick(c, &p, "registry", &conf, VG_CONF_REGISTRY, conf.registry, NULL);
    if (s_reg.value && path_exists(&s_reg, "registry", s_reg.value) < 0)
        rc = VG_EXIT_USAGE;
    struct setting s_in = pick(c, &p, "input", &conf, VG_CONF_INPUT, conf.input, "-");
    if (strcmp(s_in.value, "-") && !strstr(s_in.value, "://") && path_exists(&s_in, "input", s_in.value) < 0)
        rc = VG_EXIT_USAGE;
    if (rc)
        goto out;
    if ((rc = load_registry("run", s_reg.value, &reg)))
        goto out;
    struct vg_diags d;
    vg_diags_init(&d);
    if (vg_ruleset_load(&rs, rules, (size_t)n_rules, NULL, &d) < 0) {
        vg_diags_print(&d, stderr);
        fprintf(stderr, "vigil run: %zu error%s in the rules\n", d.n, d.n == 1 ? "" : "s");
        vg_diags_fini(&d);
        rc = VG_EXIT_INVALID;
        goto out;
    }
    vg_diags_fini(&d);
    struct setting s_state = pick(c, &p, "state", &conf, VG_CONF_STATE, conf.state, "memory");
    struct setting s_alerts = pick(c, &p, "alerts", &conf, VG_CONF_ALERTS, conf.alerts, "-");
    struct setting s_dead = pick(c, &p, "dead-letter", &conf, VG_CONF_DEAD_LETTER, conf.dead_letter, "stderr");
    struct setting s_sms = pick(c, &p, "sms", &conf, VG_CONF_SMS, conf.sms, NULL);
    int orc;
    if ((orc = vg_store_open(s_state.value, &store, &err)) < 0) {
        rc = open_failed(&s_state, orc, &err);
        goto out;
    }
    if ((orc = vg_source_open(s_in.value, &in, &err)) < 0) {
        rc = open_failed(&s_in, orc, &err);
        goto out;
    }
    if ((orc = vg_sink_open(s_alerts.value, &alerts, &err)) < 0) {
        rc = open_failed(&s_alerts, orc, &err);
        goto out;
    }
    if ((orc = vg_sink_open(s_dead.value, &dead, &err)) < 0) {
        rc = open_failed(&s_dead, orc, &err);
        goto out;
    }
    if (s_sms.value && (orc = vg_sink_open(s_sms.value, &sms, &err)) < 0) {
        rc = open_failed(&s_sms, orc, &err);
        goto out;
    }
    struct vg_pipeline_config cfg = {.rs = rs, .reg = reg, .input = &in, .alerts = &alerts, .dead = &dead,
                                     .sms = sms.ops ? &sms : NULL, .sms_daily_cap = conf.sms_daily_cap,
                                     .sms_digest_minute = conf.sms_digest_minute,
                                     .threads = threads, .summary = has(c, &p, "summary") || conf.summary,
                                     .lateness = lateness, .start = start, .until = until,
                                     .store = &store, .checkpoint_ms = ckpt};
    struct vg_pipeline_stats st;
    int prc = vg_pipeline_run(&cfg, &st, &err);
    vg_pipeline_print(&st, rs, stderr);
    vg_pipeline_stats_fini(&st);
    if (prc < 0) {
        fprintf(stderr, "vigil run: %s\n", err.msg);
        rc = VG_EXIT_IO;
    }
out:
    vg_source_close(&in);
    vg_sink_close(&alerts);
    vg_sink_close(&dead);
    vg_sink_close(&sms);
    vg_store_close(&store);
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
    vg_config_fini(&conf);
    free(p.pos);
    return rc;
}

static int cmd_test(int argc, char **argv)
{
    const struct command *c = find_command("test");
    struct parsed p;
    bool done;
    int rc = begin_paths(c, argc, argv, &p, "test file or directory", "test path", &done);
    if (done)
        goto out;
    struct vg_ruletest_counts n;
    struct vg_error err = {0};
    int trc = vg_ruletest_run((const char *const *)p.pos, (size_t)p.n_pos, stdout, stderr, &n, &err);
    if (trc < 0) {
        fflush(stdout);
        fprintf(stderr, "vigil test: %s\n", err.msg);
        rc = VG_EXIT_IO;
    } else {
        rc = n.failed ? VG_EXIT_INVALID : VG_EXIT_OK;
    }
    fflush(stderr);
    printf("vigil test: %u passed, %u failed\n", n.passed, n.failed);
out:
    free(p.pos);
    return rc;
}

int vg_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return VG_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_main_help(stdout);
        return VG_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("vigil %s\n", VG_VERSION);
        return VG_EXIT_OK;
    }
    const struct command *c = find_command(cmd);
    if (!c) {
        fprintf(stderr, "vigil: unknown command '%s' (commands: check, run, test; see vigil --help)\n", cmd);
        return VG_EXIT_USAGE;
    }
    return c->run(argc - 2, argv + 2);
}
