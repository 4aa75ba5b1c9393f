/* ocirun._lifecycle: the lifecycle mechanism (lifecycle.c) for the Python
 * library.  A plain CPython extension rather than a function of the cffi
 * module ocirun._native_c: loading cffi's backend costs ~1.9 ms per command
 * (measured), this module nothing measurable, and it is used on the create
 * and run paths (start times, status, removal).  Paths are str or bytes;
 * None where a path is optional.  Results mirror lifecycle.h: -1 / negative errno as
 * there. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "lifecycle.h"

/* str/bytes -> bytes object (new reference), None -> NULL with *ok */
static int path_arg(PyObject *o, PyObject **out, int optional) {
  if (o == Py_None && optional) {
    *out = NULL;
    return 1;
  }
  if (!PyUnicode_FSConverter(o, out)) return 0;
  return 1;
}

/* str -> its file-system bytes (NUL included: the grammar then refuses it),
 * bytes as they are */
static PyObject *fs_bytes(PyObject *o) {
  if (PyUnicode_Check(o)) return PyUnicode_EncodeFSDefault(o);
  if (PyBytes_Check(o)) {
    Py_INCREF(o);
    return o;
  }
  PyErr_SetString(PyExc_TypeError, "str or bytes expected");
  return NULL;
}

/* a start time: -1 for "unknown/any"; one no process can have (beyond
 * long long, from a tampered state file) becomes -2, which matches nothing */
static int start_arg(PyObject *o, void *out) {
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
  if (v == -1 && PyErr_Occurred()) return 0;
  *(long long *)out = overflow || v < -1 ? -2 : v;
  return 1;
}

#define PATH(b) ((b) ? PyBytes_AS_STRING(b) : NULL)

static PyObject *py_valid_id(PyObject *self, PyObject *arg) {
  (void)self;
  PyObject *b = fs_bytes(arg);
  if (!b) return NULL;
  int ok = lc_valid_id(PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
  Py_DECREF(b);
  return PyBool_FromLong(ok);
}

static PyObject *py_signal_number(PyObject *self, PyObject *arg) {
  (void)self;
  PyObject *b = fs_bytes(arg);
  if (!b) return NULL;
  int r = (size_t)PyBytes_GET_SIZE(b) == strlen(PyBytes_AS_STRING(b)) ? lc_signal_number(PyBytes_AS_STRING(b)) : -1;
  Py_DECREF(b);
  return PyLong_FromLong(r);
}

static PyObject *py_signals(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  PyObject *d = PyDict_New();
  if (!d) return NULL;
  int sig;
  const char *name;
  for (int i = 0; (name = lc_signal_entry(i, &sig)); i++) {
    PyObject *v = PyLong_FromLong(sig);
    if (!v || PyDict_SetItemString(d, name, v) < 0) {
      Py_XDECREF(v);
      Py_DECREF(d);
      return NULL;
    }
    Py_DECREF(v);
  }
  return d;
}

static PyObject *py_pid_start_time(PyObject *self, PyObject *arg) {
  (void)self;
  long long pid = PyLong_AsLongLong(arg);
  if (pid == -1 && PyErr_Occurred()) return NULL;
  return PyLong_FromLongLong(lc_pid_start_time(pid));
}

static PyObject *py_never_executed(PyObject *self, PyObject *args) {
  (void)self;
  long long pid, start;
  if (!PyArg_ParseTuple(args, "LO&", &pid, start_arg, &start)) return NULL;
  return PyBool_FromLong(lc_never_executed(pid, start));
}

static PyObject *py_status(PyObject *self, PyObject *args) {
  (void)self;
  long long pid, start;
  int cgv;
  PyObject *fo, *fifoo, *freeze = NULL, *fifo = NULL;
  if (!PyArg_ParseTuple(args, "LO&OiO", &pid, start_arg, &start, &fo, &cgv, &fifoo)) return NULL;
  if (!path_arg(fo, &freeze, 1)) return NULL;
  if (!path_arg(fifoo, &fifo, 1)) {
    Py_XDECREF(freeze);
    return NULL;
  }
  int s = lc_status(pid, start, PATH(freeze), cgv, PATH(fifo));
  Py_XDECREF(freeze);
  Py_XDECREF(fifo);
  return PyUnicode_FromString(lc_status_name(s));
}

static PyObject *py_thaw(PyObject *self, PyObject *args) {
  (void)self;
  int cgv;
  PyObject *fo, *freeze;
  if (!PyArg_ParseTuple(args, "Oi", &fo, &cgv) || !path_arg(fo, &freeze, 1)) return NULL;
  int r = lc_thaw(PATH(freeze), cgv);
  Py_XDECREF(freeze);
  return PyLong_FromLong(r);
}

static PyObject *py_signal(PyObject *self, PyObject *args) {
  (void)self;
  long long pid, start;
  int sig;
  if (!PyArg_ParseTuple(args, "LO&i", &pid, start_arg, &start, &sig)) return NULL;
  return PyLong_FromLong(lc_signal(pid, start, sig));
}

static PyObject *py_release(PyObject *self, PyObject *args) {
  (void)self;
  long long pid, start;
  int fd, r;
  int phase = 0;
  if (!PyArg_ParseTuple(args, "iLO&", &fd, &pid, start_arg, &start)) return NULL;
  /* in slices, so that Python's signal handlers run in between */
  do {
    Py_BEGIN_ALLOW_THREADS
    r = lc_release(fd, pid, start, 100, &phase);
    Py_END_ALLOW_THREADS
    if (r == LC_REL_WAIT && PyErr_CheckSignals() < 0) return NULL;
  } while (r == LC_REL_WAIT);
  static const char *names[] = {"released", "dead", "taken", "hook"};
  return PyUnicode_FromString(names[r]);
}

static PyObject *py_wait_dead(PyObject *self, PyObject *args) {
  (void)self;
  long long pid, start;
  int ms, r;
  if (!PyArg_ParseTuple(args, "LO&i", &pid, start_arg, &start, &ms)) return NULL;
  /* in slices, so that Python's signal handlers run in between, as they
   * did when the wait was a Python loop */
  double deadline = lc_monotonic() + ms / 1000.0;
  for (;;) {
    double left = deadline - lc_monotonic();
    int slice = left <= 0 ? 0 : left < 0.1 ? (int)(left * 1000) : 100;
    Py_BEGIN_ALLOW_THREADS
    r = lc_wait_dead(pid, start, slice);
    Py_END_ALLOW_THREADS
    if (r != 0 || slice == 0) return PyLong_FromLong(r);
    if (PyErr_CheckSignals() < 0) return NULL;
  }
}

static PyObject *py_remove_cgroup(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *o, *dir;
  double timeout;
  char bad[4200];
  int r;
  if (!PyArg_ParseTuple(args, "Od", &o, &timeout) || !path_arg(o, &dir, 0)) return NULL;
  double deadline = lc_monotonic() + timeout;
  Py_BEGIN_ALLOW_THREADS
  r = lc_remove_cgroup(PyBytes_AS_STRING(dir), deadline, bad, sizeof(bad));
  Py_END_ALLOW_THREADS
  Py_DECREF(dir);
  if (!r) Py_RETURN_NONE;
  return Py_BuildValue("(iO&)", r, PyUnicode_DecodeFSDefault, bad);
}

/* a list of paths -> their bytes (a new list, kept alive) and char pointers */
static int path_list(PyObject *seq, PyObject **keep, const char ***out, int *n) {
  PyObject *fast = PySequence_Fast(seq, "a list of paths expected");
  if (!fast) return 0;
  Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
  *keep = PyList_New(len);
  *out = PyMem_Calloc((size_t)len + 1, sizeof(char *));
  if (!*keep || !*out) {
    Py_DECREF(fast);
    Py_XDECREF(*keep);
    PyMem_Free(*out);
    PyErr_NoMemory();
    return 0;
  }
  for (Py_ssize_t i = 0; i < len; i++) {
    PyObject *b;
    if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(fast, i), &b)) {
      Py_DECREF(fast);
      Py_DECREF(*keep);
      PyMem_Free(*out);
      return 0;
    }
    PyList_SET_ITEM(*keep, i, b);
    (*out)[i] = PyBytes_AS_STRING(b);
  }
  Py_DECREF(fast);
  *n = (int)len;
  return 1;
}

static PyObject *py_remove_made(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *mo, *oo, *mkeep, *okeep;
  const char **made, **own;
  int nmade, nown, r;
  double timeout;
  char bad[4200];
  if (!PyArg_ParseTuple(args, "OOd", &mo, &oo, &timeout)) return NULL;
  if (!path_list(mo, &mkeep, &made, &nmade)) return NULL;
  if (!path_list(oo, &okeep, &own, &nown)) {
    Py_DECREF(mkeep);
    PyMem_Free(made);
    return NULL;
  }
  double deadline = lc_monotonic() + timeout;
  Py_BEGIN_ALLOW_THREADS
  r = lc_remove_made(made, nmade, own, nown, deadline, bad, sizeof(bad));
  Py_END_ALLOW_THREADS
  Py_DECREF(mkeep);
  Py_DECREF(okeep);
  PyMem_Free(made);
  PyMem_Free(own);
  if (!r) Py_RETURN_NONE;
  return Py_BuildValue("(iO&)", r, PyUnicode_DecodeFSDefault, bad);
}

static PyObject *py_default_root(PyObject *self, PyObject *arg) {
  (void)self;
  char buf[4200];
  PyObject *b = NULL;
  if (arg != Py_None && !(b = fs_bytes(arg))) return NULL;
  const char *xdg = b ? PyBytes_AS_STRING(b) : NULL;
  if (b && strlen(xdg) != (size_t)PyBytes_GET_SIZE(b)) xdg = NULL;
  PyObject *res = PyUnicode_DecodeFSDefault(lc_default_root(xdg, buf, sizeof(buf)));
  Py_XDECREF(b);
  return res;
}

static PyObject *py_remove_dir(PyObject *self, PyObject *arg) {
  (void)self;
  PyObject *dir;
  int r;
  if (!path_arg(arg, &dir, 0)) return NULL;
  Py_BEGIN_ALLOW_THREADS
  r = lc_remove_dir(PyBytes_AS_STRING(dir));
  Py_END_ALLOW_THREADS
  Py_DECREF(dir);
  return PyLong_FromLong(r);
}

static PyObject *py_strerror(PyObject *self, PyObject *arg) {
  (void)self;
  long e = PyLong_AsLong(arg);
  if (e == -1 && PyErr_Occurred()) return NULL;
  return PyUnicode_DecodeLocale(lc_strerror((int)e), "surrogateescape");
}

static PyObject *py_in_user_namespace(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyBool_FromLong(lc_in_user_namespace());
}

static PyMethodDef METHODS[] = {
    {"valid_id", py_valid_id, METH_O, "runc's container id grammar"},
    {"signal_number", py_signal_number, METH_O, "a plain signal number or name, or -1"},
    {"signals", py_signals, METH_NOARGS, "the signal-name table: {name: number}"},
    {"pid_start_time", py_pid_start_time, METH_O, "start time of a live pid, or -1"},
    {"never_executed", py_never_executed, METH_VARARGS, "(pid, start or -1): no execve since the clone"},
    {"status", py_status, METH_VARARGS, "(pid, start, freezer file, cgroup version, fifo): the status"},
    {"thaw", py_thaw, METH_VARARGS, "(freezer file, cgroup version): 0 or -errno"},
    {"signal", py_signal, METH_VARARGS, "(pid, start, sig) through a checked pidfd: 0 or -errno"},
    {"release", py_release, METH_VARARGS,
     "(exec fifo fd, pid, start): 'released', 'dead', 'taken' (already running) or 'hook' ('E' read)"},
    {"wait_dead", py_wait_dead, METH_VARARGS, "(pid, start, timeout ms): 1 gone, 0 alive, -errno"},
    {"remove_cgroup", py_remove_cgroup, METH_VARARGS, "(dir, timeout s): None or (errno, dir)"},
    {"remove_made", py_remove_made, METH_VARARGS, "(made, own, timeout s): None or (errno, dir)"},
    {"default_root", py_default_root, METH_O, "(XDG_RUNTIME_DIR or None): runc's default --root"},
    {"remove_dir", py_remove_dir, METH_O, "a state directory as a whole: 0 or -errno"},
    {"strerror", py_strerror, METH_O, "errno text in glibc's wording"},
    {"in_user_namespace", py_in_user_namespace, METH_NOARGS, "runc's RunningInUserNS()"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "ocirun._lifecycle", NULL, -1, METHODS,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__lifecycle(void) { return PyModule_Create(&MODULE); }
