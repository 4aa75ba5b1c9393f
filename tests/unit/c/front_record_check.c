/* Parses one record file with the front-end's parser (csrc/front/record.c)
 * and prints "ok <number of cgroup dirs>" or "rejected": built by
 * tests/unit/test_error_lines.py.  argv: the record's container directory. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"

void handoff(struct ctx *c) {
  (void)c;
  _exit(3);
}

void prime_cgroup_v1(void) {}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  struct ctx c = {.id = "c"};
  snprintf(c.dir, sizeof(c.dir), "%s", argv[1]);
  static struct record r;
  if (record_read(&c, &r) == 0) printf("ok %d\n", r.ncg);
  else printf("rejected\n");
  return 0;
}
