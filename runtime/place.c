/* runtime/place.c - where actors and stages run, from TROUPE_PLACE (see
 * place.h). */
#include "runtime/place.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/log.h"

#define S_MAX_N 1024
#define S_FILE_MAX 8192

static char *
s_trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

int
tr__place_parse(const char *v, const char *from, tr__place_t *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(v, ':');
    size_t kind_len = strlen(v);
    if (colon != NULL) {
        char *end;
        long n = strtol(colon + 1, &end, 10);
        if (colon[1] == 0 || *end != 0 || n < 1 || n > S_MAX_N)
            return tr__refuse(TR_EINVAL, "%s: '%s': the number of workers "
                              "must be 1..%d", from, v, S_MAX_N);
        out->n = (int)n;
        kind_len = (size_t)(colon - v);
    }
    if (kind_len == 6 && strncmp(v, "thread", 6) == 0) {
        out->kind = 0;
    } else if (kind_len == 7 && strncmp(v, "process", 7) == 0) {
        out->kind = 1;
    } else if (kind_len >= 4 && strncmp(v, "node", 4) == 0 &&
               (kind_len == 4 || v[4] == ' ')) {
        size_t at = 4 + strspn(v + 4, " ");
        size_t nl = at < kind_len ? kind_len - at : 0;
        if (nl == 0 || nl > TR_NAME_MAX)
            return tr__refuse(TR_EINVAL, "%s: '%s': a node's name must be "
                              "1..%d bytes", from, v, TR_NAME_MAX);
        out->kind = 2;
        memcpy(out->node, v + at, nl);
        out->node[nl] = 0;
    } else {
        return tr__refuse(TR_EINVAL, "%s: '%s': a place is thread[:N], "
                          "process[:N] or node NAME[:N]", from, v);
    }
    return 0;
}

int
tr__place_each(const char *text, const char *from, tr__place_fn fn,
               void *arg)
{
    char *copy = strdup(text), *save = NULL;
    if (copy == NULL)
        return TR_ENOMEM;
    int rc = 0;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = 0;
        char *save2 = NULL;
        for (char *e = strtok_r(line, ",", &save2); e != NULL && rc == 0;
             e = strtok_r(NULL, ",", &save2)) {
            e = s_trim(e);
            if (*e == 0)
                continue;
            char *eq = strchr(e, '=');
            if (eq == NULL) {
                rc = tr__refuse(TR_EINVAL, "%s: '%s' is not NAME=PLACE",
                                from, e);
                break;
            }
            *eq = 0;
            rc = fn(arg, s_trim(e), s_trim(eq + 1), from);
        }
    }
    free(copy);
    return rc;
}

int
tr__place_env(char **out, const char **from)
{
    *out = NULL;
    *from = "TROUPE_PLACE";
    const char *env = getenv("TROUPE_PLACE");
    if (env == NULL || *env == 0)
        return 0;
    if (env[0] != '@')
        return (*out = strdup(env)) != NULL ? 0 : TR_ENOMEM;
    *from = env + 1;
    FILE *f = fopen(env + 1, "r");
    if (f == NULL)
        return tr__refuse(TR_EINVAL, "TROUPE_PLACE: cannot read '%s'",
                          env + 1);
    char *buf = malloc(S_FILE_MAX);
    size_t len = buf ? fread(buf, 1, S_FILE_MAX - 1, f) : 0;
    bool more = !feof(f);
    fclose(f);
    if (buf == NULL)
        return TR_ENOMEM;
    if (more) {
        free(buf);
        return tr__refuse(TR_EINVAL, "TROUPE_PLACE: '%s' is over 8 KiB",
                          env + 1);
    }
    buf[len] = 0;
    *out = buf;
    return 0;
}

typedef struct s_find {
    const char *name;
    tr__place_t *out;
    bool found;
} s_find_t;

static int
s_find_fn(void *arg, const char *name, const char *place, const char *from)
{
    s_find_t *f = arg;
    if (strcmp(name, f->name) != 0)
        return 0;
    int rc = tr__place_parse(place, from, f->out);
    f->found = rc == 0;
    return rc;
}

int
tr__place_find(const char *name, tr__place_t *out)
{
    char *text;
    const char *from;
    int rc = tr__place_env(&text, &from);
    if (rc != 0 || text == NULL)
        return rc;
    s_find_t f = {name, out, false};
    rc = tr__place_each(text, from, s_find_fn, &f);
    free(text);
    return rc != 0 ? rc : f.found ? 1 : 0;
}
