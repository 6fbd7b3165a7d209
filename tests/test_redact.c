/* test_redact.c - placeholder until the suite lands. */
#include "testlib.h"
int main(void)
{
    CHECK(0, "not written yet");
    return t_done("test_redact");
}
