"""The verbs of the runtime, one per module, as a library: the CLI
(ocirun/cli) parses arguments, calls one of these and prints what it returns.

    create.py   create (CreateOptions)          start.py    start
    run.py      run: create + start + wait       state.py    state
    list.py     list                            kill.py     kill
    delete.py   delete (and destroy)            exec.py     exec
    freeze.py   pause and resume                update.py   update
    ps.py       ps                              events.py   events
    spec.py     spec                            features.py features

What several verbs share lives in common.py (signalling the init, waiting,
the container's pids, mounts made in the runtime's namespace) and spawn.py
(the one spawn path of create and exec).  Nothing is imported here: each
command loads only its own verb (the start-up budget)."""
