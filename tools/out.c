/* tools/out.c - output helpers of the troupe command: strings as JSON and
 * as XML that always parse (names and tags come from programs and from
 * trace files, so they may hold any byte), msgpack values as JSON,
 * durations for people, and reading msgpack maps by key. */
#include "tools/tool.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void (*tt_err_hook)(void);
_Thread_local bool tt_err_quiet;
_Thread_local char tt_err_last[512];

void
tt_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tt_err_last, sizeof tt_err_last, fmt, ap);
    va_end(ap);
    if (tt_err_quiet)
        return;
    if (tt_err_hook != NULL)
        tt_err_hook();
    fflush(stdout); /* keep the order of what both streams said */
    fprintf(stderr, "troupe: %s\n", tt_err_last);
}

bool
tt_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* Decode one UTF-8 character at p (len > 0 bytes left): how many bytes it
 * takes and its code point, or 1 and U+FFFD for a byte that does not
 * start a valid one (overlong forms, surrogates and values past U+10FFFF
 * are not valid). */
static size_t
s_utf8_next(const unsigned char *p, size_t len, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    if (n > len)
        goto bad;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            goto bad;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        goto bad;
    *cp = v;
    return n;
bad:
    *cp = 0xfffd;
    return 1;
}

void
tt_json_strn(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = s_utf8_next(p + i, len - i, &cp);
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (char)cp);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (cp == '\t')
            fputs("\\t", f);
        else if (cp < 0x20 || cp == 0x7f)
            fprintf(f, "\\u%04x", (unsigned)cp);
        else if (cp == 0xfffd && n == 1)
            fputs("\\ufffd", f);
        else
            fwrite(p + i, 1, n, f);
        i += n;
    }
    fputc('"', f);
}

void
tt_json_str(FILE *f, const char *s)
{
    tt_json_strn(f, s, strlen(s));
}

void
tt_xml_strn(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = s_utf8_next(p + i, len - i, &cp);
        switch (cp) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            /* XML 1.0 allows no control character but tab, LF and CR;
             * U+FFFE and U+FFFF are not characters either. */
            if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
                cp == 0xfffe || cp == 0xffff || (cp == 0xfffd && n == 1))
                fputs("&#xfffd;", f);
            else
                fwrite(p + i, 1, n, f);
        }
        i += n;
    }
}

void
tt_xml_str(FILE *f, const char *s)
{
    tt_xml_strn(f, s, strlen(s));
}

void
tt_json_obj(FILE *f, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64))
            fprintf(f, "%.17g", o->via.f64);
        else
            fputs("null", f);
        break;
    case MSGPACK_OBJECT_STR:
        tt_json_strn(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        fputc('"', f);
        for (uint32_t i = 0; i < o->via.bin.size; i++)
            fprintf(f, "%02x", (unsigned char)o->via.bin.ptr[i]);
        fputc('"', f);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0)
                fputc(',', f);
            tt_json_obj(f, &o->via.array.ptr[i]);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i > 0)
                fputc(',', f);
            if (kv->key.type == MSGPACK_OBJECT_STR) {
                tt_json_obj(f, &kv->key);
            } else {
                /* JSON keys are strings: write the key's JSON as one. */
                char *text = NULL;
                size_t size = 0;
                FILE *m = open_memstream(&text, &size);
                if (m != NULL) {
                    tt_json_obj(m, &kv->key);
                    fclose(m);
                    tt_json_strn(f, text, size);
                } else {
                    fputs("\"?\"", f);
                }
                free(text);
            }
            fputc(':', f);
            tt_json_obj(f, &kv->val);
        }
        fputc('}', f);
        break;
    default: /* ext */
        fputs("null", f);
        break;
    }
}

void
tt_fmt_ms(char *buf, size_t cap, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, cap, "%" PRId64 "ms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%" PRId64 ".%" PRId64 "s", s, ms % 1000 / 100);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600,
                 s % 3600 / 60);
    else
        snprintf(buf, cap, "%" PRId64 "d%02" PRId64 "h", s / 86400,
                 s % 86400 / 3600);
}

static int64_t
s_clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
tt_mono_ms(void)
{
    return s_clock_ms(CLOCK_MONOTONIC);
}

int64_t
tt_unix_ms(void)
{
    return s_clock_ms(CLOCK_REALTIME);
}

void
tt_clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

const msgpack_object *
tt_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

int64_t
tt_get_int(const msgpack_object *map, const char *key, int64_t def)
{
    const msgpack_object *v = tt_get(map, key);
    if (v == NULL)
        return def;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return v->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->via.u64;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    return def;
}

const char *
tt_get_str(const msgpack_object *map, const char *key, char *buf, size_t cap,
           const char *def)
{
    const msgpack_object *v = tt_get(map, key);
    if (v == NULL || v->type != MSGPACK_OBJECT_STR) {
        snprintf(buf, cap, "%s", def);
        return buf;
    }
    size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
    memcpy(buf, v->via.str.ptr, n);
    buf[n] = '\0';
    tt_clean(buf);
    return buf;
}

bool
tt_get_bool(const msgpack_object *map, const char *key, bool def)
{
    const msgpack_object *v = tt_get(map, key);
    if (v == NULL || v->type != MSGPACK_OBJECT_BOOLEAN)
        return def;
    return v->via.boolean;
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

void
tt_table_init(tt_table_t *t, int ncols, const char *align,
              const char *const *head)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->align = align;
    tt_table_add(t, head);
}

void
tt_table_add(tt_table_t *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        int ncap = t->cap ? 2 * t->cap : 16;
        char **more = realloc(t->cells, (size_t)ncap * (size_t)t->ncols *
                                            sizeof *more);
        if (more == NULL) {
            tt_err("out of memory");
            exit(TT_EXIT_FAIL);
        }
        t->cells = more, t->cap = ncap;
    }
    for (int c = 0; c < t->ncols; c++) {
        char *cell = strdup(row[c] ? row[c] : "");
        if (cell == NULL) {
            tt_err("out of memory");
            exit(TT_EXIT_FAIL);
        }
        t->cells[t->nrows * t->ncols + c] = cell;
    }
    t->nrows++;
}

/* Characters in a UTF-8 string: the bytes that do not continue one. */
static int
s_chars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

void
tt_table_print(const tt_table_t *t, FILE *f, int width, const char *eol)
{
    int w[32] = {0};
    int ncols = t->ncols < 32 ? t->ncols : 32;
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < ncols; c++) {
            int n = s_chars(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    char *line = NULL;
    size_t size = 0;
    for (int r = 0; r < t->nrows; r++) {
        FILE *m = open_memstream(&line, &size);
        if (m == NULL)
            return;
        for (int c = 0; c < ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            int pad = w[c] - s_chars(cell);
            bool last = c == ncols - 1;
            if (c > 0)
                fputs("  ", m);
            if (t->align[c] == 'r')
                fprintf(m, "%*s%s", pad, "", cell);
            else
                fprintf(m, "%s%*s", cell, last ? 0 : pad, "");
        }
        fclose(m);
        /* Cut at width characters, never inside one. */
        if (width > 0) {
            int n = 0;
            for (size_t i = 0; i < size; i++) {
                if (((unsigned char)line[i] & 0xc0) != 0x80 && n++ == width) {
                    line[i] = '\0';
                    break;
                }
            }
        }
        fputs(line, f);
        fputs(eol, f);
        free(line);
        line = NULL;
    }
}

void
tt_table_free(tt_table_t *t)
{
    for (int i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static bool
s_allowed(const char *allowed, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = allowed; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static bool
s_int_arg(const char *s, int min, int *out)
{
    char *end;
    if (s == NULL)
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > 86400000)
        return false;
    *out = (int)v;
    return true;
}

int
tt_args_parse(int argc, char **argv, const char *allowed, tt_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->timeout_ms = TT_TIMEOUT_MS;
    a->delay_ms = 1000;
    a->port = -1;
    bool dashdash = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (dashdash || arg[0] != '-' || arg[1] == '\0') {
            if (a->npos == (int)(sizeof a->pos / sizeof a->pos[0])) {
                tt_err("too many arguments ('%s')", arg);
                return TT_EXIT_USAGE;
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            dashdash = true;
            continue;
        }
        /* --name or --name=value; -h is the one short option. */
        char name[32];
        const char *value = NULL;
        if (strcmp(arg, "-h") == 0) {
            snprintf(name, sizeof name, "help");
        } else if (arg[1] == '-') {
            const char *eq = strchr(arg + 2, '=');
            size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            if (n >= sizeof name)
                n = sizeof name - 1;
            memcpy(name, arg + 2, n);
            name[n] = '\0';
            value = eq ? eq + 1 : NULL;
        } else {
            tt_err("unknown option '%s'", arg);
            return TT_EXIT_USAGE;
        }
        if (strcmp(name, "help") == 0)
            return TT_HELP;
        if (!s_allowed(allowed, name)) {
            tt_err("unknown option '%s'", arg);
            return TT_EXIT_USAGE;
        }
        bool takes = strcmp(name, "timeout") == 0 ||
                     strcmp(name, "delay") == 0 || strcmp(name, "max") == 0 ||
                     strcmp(name, "perfetto") == 0 || strcmp(name, "svg") == 0 ||
                     strcmp(name, "sort") == 0 || strcmp(name, "port") == 0 ||
                     strcmp(name, "bind") == 0;
        if (takes && value == NULL) {
            if (i + 1 >= argc) {
                tt_err("option '--%s' needs a value", name);
                return TT_EXIT_USAGE;
            }
            value = argv[++i];
        } else if (!takes && value != NULL) {
            tt_err("option '--%s' takes no value", name);
            return TT_EXIT_USAGE;
        }
        bool ok = true;
        if (strcmp(name, "json") == 0)
            a->json = true;
        else if (strcmp(name, "all") == 0)
            a->all = true;
        else if (strcmp(name, "force") == 0)
            a->force = true;
        else if (strcmp(name, "once") == 0)
            a->once = true;
        else if (strcmp(name, "timeout") == 0)
            ok = s_int_arg(value, 1, &a->timeout_ms);
        else if (strcmp(name, "delay") == 0)
            ok = s_int_arg(value, 10, &a->delay_ms);
        else if (strcmp(name, "max") == 0)
            ok = s_int_arg(value, 1, &a->max);
        else if (strcmp(name, "perfetto") == 0)
            a->perfetto = value;
        else if (strcmp(name, "svg") == 0)
            a->svg = value;
        else if (strcmp(name, "sort") == 0)
            a->sort = value;
        else if (strcmp(name, "port") == 0)
            ok = s_int_arg(value, 0, &a->port) && a->port <= 65535;
        else if (strcmp(name, "bind") == 0)
            a->bind = value;
        else if (strcmp(name, "gdb") == 0)
            a->gdb = true;
        if (!ok) {
            tt_err("option '--%s': bad value '%s'", name, value);
            return TT_EXIT_USAGE;
        }
    }
    return 0;
}
