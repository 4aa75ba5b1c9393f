/* Mutation fuzzing of the front-end's record parser and `state` renderer
 * (csrc/front/record.c, commands.c, state.c …), built with ASan/UBSan by
 * tests/unit/test_front_record.py.  argv: seed record file, work dir, seed,
 * iterations.  Each mutant is parsed in a child; a sanitizer report or a
 * crash makes the child fail, and the mutant is kept as <work>/crash. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "front.h"

void handoff(struct ctx *c) {
  (void)c;
  _exit(0); /* what the real front-end does here is exec Python */
}

void prime_cgroup_v1(void) {}

static char base[1 << 17], buf[1 << 17];

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  size_t n = fread(base, 1, sizeof(base), f);
  fclose(f);
  char dir[4096], path[4200];
  snprintf(dir, sizeof(dir), "%s/c", argv[2]);
  mkdir(dir, 0700);
  snprintf(path, sizeof(path), "%s/fast", dir);
  srand((unsigned)atoi(argv[3]));
  int iters = atoi(argv[4]);
  static const char *ins[] = {"\n", " ", "999999999999999999999", "-1", "\nhead 5\n", "cg /x\n", "tail 0\n", "py start"};
  for (int it = 0; it < iters; it++) {
    memcpy(buf, base, n);
    size_t m = n;
    for (int j = 1 + rand() % 6; j > 0; j--) {
      size_t pos = m ? (size_t)rand() % m : 0;
      switch (rand() % 4) {
      case 0: if (m) buf[pos] = (char)rand(); break;
      case 1: if (m > 1) { memmove(buf + pos, buf + pos + 1, m - pos - 1); m--; } break;
      case 2: m = pos; break;
      default: {
        const char *s = ins[rand() % 8];
        size_t l = strlen(s);
        if (m + l < sizeof(buf)) { memmove(buf + pos + l, buf + pos, m - pos); memcpy(buf + pos, s, l); m += l; }
      }
      }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, buf, m) != (ssize_t)m) return 2;
    close(fd);
    pid_t p = fork();
    if (p == 0) {
      int dn = open("/dev/null", O_WRONLY);
      dup2(dn, 1);
      struct ctx c = {.root = argv[2], .id = "c"};
      snprintf(c.dir, sizeof(c.dir), "%s", dir);
      static struct record r;
      if (record_read(&c, &r) == 0) {
        record_status(&c, &r);
        cmd_state(&c);
      }
      _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
      snprintf(path, sizeof(path), "%s/crash", argv[2]);
      fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) { if (write(fd, buf, m) < 0) {} close(fd); }
      fprintf(stderr, "iteration %d: the parser failed on a mutant (kept in %s)\n", it, path);
      return 1;
    }
  }
  return 0;
}
