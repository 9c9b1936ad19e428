"""Entry point of a DataLoader worker process, run as ``python _worker_boot.py TASK_FD RES_FD``.

Kept to the standard library: it installs light stand-ins for the ``hybrid`` and
``hybrid.gluon`` packages (so that importing ``hybrid.gluon.data`` does not run
their ``__init__``, which imports JAX), applies the parent's ``sys.path``/cwd (and,
only when the pickled dataset needs it, imports the parent's ``__main__`` as
``multiprocessing``'s spawn start method does), then runs the worker loop of
``hybrid.gluon.data._worker``.  See ``_workers.py`` for the protocol.
"""

import os
import sys


def _install_stubs(stubs):
    import importlib
    import importlib.machinery
    import importlib.util
    import types

    class _LazyPackage(types.ModuleType):
        """A package whose real ``__init__`` runs only when one of its attributes is used."""

        def __getattr__(self, name):
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            d = self.__dict__
            if not d.get("_hybrid_real_init_loaded"):
                d["_hybrid_real_init_loaded"] = True
                init = os.path.join(self.__path__[0], "__init__.py")
                if os.path.exists(init):
                    spec = importlib.util.spec_from_file_location(
                        self.__name__, init, submodule_search_locations=list(self.__path__)
                    )
                    d["__spec__"] = spec
                    d["__file__"] = init
                    spec.loader.exec_module(self)
                    if name in d:
                        return d[name]
            try:
                return importlib.import_module(f"{self.__name__}.{name}")
            except ImportError:
                raise AttributeError(
                    f"module {self.__name__!r} has no attribute {name!r}"
                ) from None

    for name, path in stubs:
        if name in sys.modules:
            continue
        mod = _LazyPackage(name)
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [path]
        mod.__spec__ = spec
        mod.__path__ = [path]
        mod.__package__ = name
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, mod)


def _error_info(exc):
    import pickle
    import traceback

    try:
        blob = pickle.dumps(exc)
    except Exception:  # noqa: BLE001
        blob = None
    return (type(exc).__name__, str(exc), traceback.format_exc(), blob)


def _main():
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import pickle
    from multiprocessing.connection import Connection

    task = Connection(int(sys.argv[1]), writable=False)
    res = Connection(int(sys.argv[2]), readable=False)
    try:
        init = pickle.loads(task.recv_bytes())
    except (EOFError, OSError):
        return
    try:
        _install_stubs(init["stubs"])
        import multiprocessing.process
        import multiprocessing.spawn as spawn

        # Like multiprocessing's spawn: while the parent's __main__ is imported, starting
        # processes is an error (an unguarded script would otherwise recurse).
        current = multiprocessing.process.current_process()
        current._inheriting = True
        try:
            spawn.prepare(init["prep"])
        finally:
            del current._inheriting
        from hybrid.gluon.data import _worker
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        try:
            res.send_bytes(pickle.dumps(("err", _error_info(exc))))
        except OSError:
            pass  # the parent has already given up on this pool
        sys.exit(1)
    _worker.run(task, res, init)


if __name__ == "__main__":
    _main()
