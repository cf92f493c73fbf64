/* runtime/control_req.c - reading a control endpoint request
 * (docs/control.md) with troupe's own reader: no allocation whatever the
 * bytes say (a forged array count cannot make it reserve memory), and
 * nothing accepted but [command] or [command, id]. Fuzzed by
 * fuzz/fuzz_control.c. */
#include "runtime/control.h"

#include <string.h>

int
tr__control_parse(const void *data, size_t len, tr__control_req_t *req)
{
    memset(req, 0, sizeof *req);
    if (data == NULL || len > TR__CONTROL_MAX_REQUEST)
        return TR_ERANGE;
    tr_reader_t r;
    uint32_t n;
    const char *s;
    size_t sl;
    tr_reader_init_bytes(&r, data, len);
    if (tr_read_array(&r, &n) != 0 || n < 1 || n > 2 ||
        tr_read_str(&r, &s, &sl) != 0 || sl == 0 ||
        sl >= sizeof req->cmd || memchr(s, '\0', sl) != NULL)
        return TR_EPROTO;
    memcpy(req->cmd, s, sl);
    req->nargs = (int)n - 1;
    if (n == 2 && tr_read_uint(&r, &req->id) != 0)
        return TR_EPROTO;
    if (!tr_read_done(&r)) /* bytes after the request */
        return TR_EPROTO;
    return 0;
}
