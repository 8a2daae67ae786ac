/* main.c — the plexus command (subcommands dispatch). */
#include <stdio.h>
#include <string.h>

#include "base/px_internal.h"

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "plexus: no command\n");
  return 2;
}
