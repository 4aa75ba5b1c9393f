"""What the C front-end (csrc/front) prepared before handing a command to
Python, passed in environment variables it sets or clears itself:

  _OCIRUN_PRIMER=<pid>   cgroup v1 only: the helper that pre-pays the kernel's
                         RCU grace period of a cgroup.procs write while the
                         interpreter starts (csrc/front/primer.c).  stop() ends
                         it once this process's own writes are done, or at exit.
  _OCIRUN_SUBREAPER=1    `run`: PR_SET_CHILD_SUBREAPER is already set (saves
                         loading the cffi extension on the run path).

take() removes both from the environment at start-up.  Only a child of this
process is ever signalled."""

import os

_primer = None
_subreaper = False


def take():
    global _primer, _subreaper
    _subreaper = os.environ.pop("_OCIRUN_SUBREAPER", None) == "1"
    v = os.environ.pop("_OCIRUN_PRIMER", None)
    if not v or not v.isdigit():
        return
    from ocirun.state import proc_stat

    pid = int(v)
    fields = proc_stat(pid)
    if fields and len(fields) > 1 and fields[1] == str(os.getpid()).encode():  # our own child
        _primer = pid


def stop_primer():
    global _primer
    pid, _primer = _primer, None
    if pid is None:
        return
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def subreaper(wanted):
    """Make this process a child subreaper (or not), unless the front-end
    already did what is wanted."""
    global _subreaper
    if wanted == _subreaper:
        return
    from ocirun import procs

    procs.set_subreaper(wanted)
    _subreaper = wanted
