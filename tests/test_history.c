#include "testlib.h"
int main(void)
{
    CHECK(1, "placeholder");
    return t_done("test_history");
}
