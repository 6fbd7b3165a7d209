/* cli_hook.c - placeholder */
#include "cli.h"
int cli_hook(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 2;
}
