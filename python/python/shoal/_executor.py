"""The executor on a host: `python -m shoal._executor PLAN_FILE`, started
by the agent (as a resident executor) with the synced package first on
`PYTHONPATH`. It loads the job's plan once and computes task after task
as the agent sends them (`shoal._native.serve`); an exception in a user
function fails that task with its traceback, partition and host.
"""

import os
import pickle
import socket
import sys
import traceback

from shoal import _native


#: Frames of the package itself are left out of a task's traceback.
PACKAGE = os.path.dirname(os.path.abspath(__file__))


def user_traceback(e, source):
    """The traceback of `e` without the package's own frames. Functions
    pickled by value lost their file name (cloudpickle keeps payloads
    deterministic); they come from the program's main script, `source`."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not os.path.abspath(f.filename).startswith(PACKAGE + os.sep)]
    if source:
        frames = [traceback.FrameSummary(source, f.lineno, f.name) if f.filename == "<dynamic-code>" else f for f in frames]
    head = "Traceback (most recent call last):\n" if frames else ""
    return head + "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(e), e))


def flush():
    """User prints go to the task's log (fd 1 is stderr here) before its answer."""
    sys.stdout.flush()
    sys.stderr.flush()


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python -m shoal._executor PLAN_FILE (the agent starts it; it is not meant to be run by hand)")
    if os.environ.get("SHOAL_EXECUTOR") != "1":
        sys.exit("shoal._executor serves an agent's tasks on its stdin; an agent starts it with SHOAL_EXECUTOR=1")
    with open(argv[1], "rb") as f:
        plan = pickle.load(f)
    host = socket.gethostname()

    def failure(e, stage, partition):
        side = "map" if stage == 0 else "reduce"
        # The summary sentence comes last: a failed task's report shows the end of its text.
        return RuntimeError(
            f"{user_traceback(e, plan.source)}a Python function raised {type(e).__name__} in {side} partition {partition} on host {host}"
        )

    def guarded(chunks, stage, partition):
        """The output's chunks as the native loop writes them: the user's
        functions run here, lazily, so their errors are caught here too."""
        try:
            yield from chunks
        except BaseException as e:
            raise failure(e, stage, partition) from None
        finally:
            flush()

    def run_task(stage, partition, src, is_file, output_path, inline_max):
        try:
            out = plan.run(stage, partition, src, is_file)
        except BaseException as e:
            flush()
            raise failure(e, stage, partition) from None
        if out is None or isinstance(out, bytes):
            flush()
            return out
        return guarded(out, stage, partition)

    _native.serve(f"job {plan.index}", run_task)


if __name__ == "__main__":
    main(sys.argv)
