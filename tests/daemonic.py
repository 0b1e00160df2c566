"""Run a function the way Celery's prefork pool runs a task: in a daemonic child process (one that
may not start processes of its own), forked from a parent that has not used torch.

The parent is multiprocessing's fork server, not the test process: pytest has already run torch,
and a child forked after torch's thread pools started can hang in its first torch call. A Celery
worker's main process never runs a model, so its children are forked clean, like these.
"""

import importlib
import multiprocessing
import queue as queue_errors
import traceback


def _child(target: str, args: tuple, django_settings: dict | None, results) -> None:
    try:
        assert multiprocessing.current_process().daemon
        if django_settings is not None:
            import django

            django.setup()
            from django.conf import settings

            for name, value in django_settings.items():
                setattr(settings, name, value)
        module, name = target.rsplit(".", 1)
        results.put(("ok", getattr(importlib.import_module(module), name)(*args)))
    except BaseException:  # noqa: BLE001 — reported to the parent, which raises
        results.put(("error", traceback.format_exc()))


def in_daemonic_child(target: str, *args, django_settings: dict | None = None, timeout: float = 120.0):
    """`module.function(*args)` (named by its dotted path) in a daemonic child; its return value
    (pickled) or its error. With `django_settings`, Django is set up there first, with these
    settings overridden (as `DJANGO_SETTINGS_MODULE` plus a worker's environment would)."""
    context = multiprocessing.get_context("forkserver")
    results = context.Queue()
    child = context.Process(target=_child, args=(target, args, django_settings, results), daemon=True)
    child.start()
    try:
        status, value = results.get(timeout=timeout)
    except queue_errors.Empty:
        child.kill()
        raise AssertionError(f"the daemonic child gave no answer in {timeout} s") from None
    finally:
        child.join(timeout=10)
    if status == "error":
        raise AssertionError(f"in the daemonic child:\n{value}")
    return value
