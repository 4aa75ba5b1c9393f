/* The same log records as ocirun/log.py (logrus's text and JSON lines, which
 * containerd and conmon parse): time in local time with its offset, the
 * message JSON-quoted with Python's ensure_ascii escaping. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "front.h"

struct buf {
  char *p;
  size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->n + n >= b->cap) n = b->cap - b->n - 1;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void u16(struct buf *b, unsigned v) {
  char t[8];
  snprintf(t, sizeof(t), "\\u%04x", v & 0xffff);
  put(b, t, 6);
}

/* json.encoder.encode_basestring_ascii of the str Python would hold for these
 * bytes (invalid UTF-8 bytes as surrogateescape, U+DC80..U+DCFF) */
static void quote(struct buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  put(b, "\"", 1);
  while (*p) {
    unsigned ch = *p;
    if (ch == '"') put(b, "\\\"", 2);
    else if (ch == '\\') put(b, "\\\\", 2);
    else if (ch == '\n') put(b, "\\n", 2);
    else if (ch == '\r') put(b, "\\r", 2);
    else if (ch == '\t') put(b, "\\t", 2);
    else if (ch == '\b') put(b, "\\b", 2);
    else if (ch == '\f') put(b, "\\f", 2);
    else if (ch >= 0x20 && ch < 0x7f) put(b, (const char *)p, 1);
    else if (ch < 0x80) u16(b, ch);
    else {
      int len = ch >= 0xf0 && ch < 0xf5 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc2 && ch < 0xe0 ? 2 : 0;
      unsigned cp = len == 4 ? ch & 7 : len == 3 ? ch & 15 : ch & 31;
      int ok = len > 0 && ch < 0xf5;
      for (int i = 1; ok && i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) ok = 0;
        else cp = (cp << 6) | (p[i] & 0x3f);
      }
      if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))))
        ok = 0;
      if (!ok) {
        u16(b, 0xdc00 | ch);
        p++;
        continue;
      }
      if (cp >= 0x10000) {
        cp -= 0x10000;
        u16(b, 0xd800 | (cp >> 10));
        u16(b, 0xdc00 | (cp & 0x3ff));
      } else {
        u16(b, cp);
      }
      p += len;
      continue;
    }
    p++;
  }
  put(b, "\"", 1);
}

static void now(char *out, size_t cap) {
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff;
  if (off == 0) {
    snprintf(out + n, cap - n, "Z");
    return;
  }
  char sign = off > 0 ? '+' : '-';
  if (off < 0) off = -off;
  snprintf(out + n, cap - n, "%c%02ld:%02ld", sign, off / 3600, off % 3600 / 60);
}

static void emit(const struct ctx *c, const char *line, size_t n) {
  if (c->log_path) {
    int fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, line, n) < 0) {
    }
    close(fd);
  } else if (write(2, line, n) < 0) {
  }
}

void log_msg(const struct ctx *c, const char *level, const char *msg) {
  char mem[8192], ts[64];
  struct buf b = {mem, 0, sizeof(mem)};
  now(ts, sizeof(ts));
  if (c->log_json) {
    puts_(&b, "{\"level\":");
    quote(&b, level);
    puts_(&b, ",\"msg\":");
    quote(&b, msg);
    puts_(&b, ",\"time\":");
    quote(&b, ts);
    puts_(&b, "}\n");
  } else {
    puts_(&b, "time=\"");
    puts_(&b, ts);
    puts_(&b, "\" level=");
    puts_(&b, level);
    puts_(&b, " msg=");
    quote(&b, msg);
    puts_(&b, "\n");
  }
  emit(c, b.p, b.n);
}

void log_error(const struct ctx *c, const char *msg) {
  log_msg(c, "error", msg);
  if (c->log_path) {
    char line[4200];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    if (n > 0 && write(2, line, (size_t)n) < 0) {
    }
  }
}
