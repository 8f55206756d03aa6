"""The parts of the worker program (`worker.py`) that run inside the worker process.

Standard library only, and relative imports only between these modules: the worker loads this
package by its file location (in the jail, under a private name), and remote sandboxes receive
it bundled into one source (`process.worker_source()`), so codeloop need not be installed there.
"""

__all__: list[str] = []
