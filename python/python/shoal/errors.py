"""The errors a Shoal program sees.

`ShoalError` (from the native module) is a job or set-up failure: its
text is the sentence `shoal` would print, `exit_code` the code it would
exit with (1 a job failed, 2 usage or input, 3 unreachable). `PlanError`
is a plan that cannot be sent to the hosts, found when the job is built.
"""

from shoal._native import ShoalError


class PlanError(ShoalError):
    """A plan cannot become a job (a function that cannot be pickled)."""

    exit_code = 2
