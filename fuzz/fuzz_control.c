/* fuzz/fuzz_control.c - libFuzzer harness for the control endpoint's
 * request reader (runtime/control_req.c): any bytes a client may send.
 *
 * Every input checks that:
 *  - the answer is 0, TR_EPROTO or TR_ERANGE, and reading allocates
 *    nothing (a forged array count cannot make it reserve memory);
 *  - an accepted request has a command of 1..15 bytes with no NUL, 0 or 1
 *    argument, and nothing after it;
 *  - an accepted request, written again with the real encoder, reads back
 *    the same. */
#include "fuzz/fuzz.h"

#include <string.h>

#include "runtime/control.h"
#include "troupe.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_meter_install();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fz_copy(data, size);
    tr__control_req_t req;
    fz_meter_start();
    int rc = tr__control_parse(copy, size, &req);
    FZ_CHECK(fz_meter_stop() == 0);
    FZ_CHECK(rc == 0 || rc == TR_EPROTO || rc == TR_ERANGE);
    if (rc == 0) {
        size_t n = strnlen(req.cmd, sizeof req.cmd);
        FZ_CHECK(n >= 1 && n < sizeof req.cmd);
        FZ_CHECK(req.nargs == 0 || req.nargs == 1);
        FZ_CHECK(req.nargs == 1 || req.id == 0);
        /* write it again and read it back */
        tr_msg_t *m = NULL;
        FZ_CHECK(tr_msg_create(&m, "req") == 0);
        FZ_CHECK(tr_msg_add_array(m, (uint32_t)(1 + req.nargs)) == 0);
        FZ_CHECK(tr_msg_add_str(m, req.cmd) == 0);
        if (req.nargs == 1)
            FZ_CHECK(tr_msg_add_uint(m, req.id) == 0);
        size_t len;
        const void *p = tr_msg_payload(m, &len);
        tr__control_req_t again;
        FZ_CHECK(tr__control_parse(p, len, &again) == 0);
        FZ_CHECK(strcmp(again.cmd, req.cmd) == 0);
        FZ_CHECK(again.nargs == req.nargs && again.id == req.id);
        tr_msg_destroy(&m);
    }
    free(copy);
    return 0;
}
