"""Recovery: trials left RUNNING by a search that stopped (Ctrl-C, SIGTERM, a kill, a lost
Ray) are failed with a reason and their parameters queued again, so that no finished trial is
lost or re-run, and what counts towards a study's target of trials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas_width.schema import TrialAttrs, trial_attrs
from nas_width.search.internals import study_storage, trial_id

if TYPE_CHECKING:
    import optuna

__all__ = ["INTERRUPTED", "MAX_ATTEMPTS", "finished_count", "recover_interrupted"]

INTERRUPTED = "interrupted: the search stopped before this trial finished"
#: Runs of the same parameters that an interruption may cost: the first run and two retries.
MAX_ATTEMPTS = 3


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards the target: complete, pruned, or failed for a real reason."""
    from optuna.trial import TrialState

    def counts(t: optuna.trial.FrozenTrial) -> bool:
        if t.state == TrialState.FAIL:
            return trial_attrs(t.user_attrs).get("fail_reason") != INTERRUPTED
        return t.state in (TrialState.COMPLETE, TrialState.PRUNED)

    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail the trials left RUNNING by a stopped search and queue their parameters again.

    Call it only while holding the study's lease: every RUNNING trial then belongs to a search
    that is gone (killed), or to this one once Ray has stopped (Ctrl-C).

    "Retried once" means one retry per interruption: each interrupted trial ends FAIL with
    ``fail_reason`` :data:`INTERRUPTED` and exactly one new trial with the same parameters is
    queued (never a second copy, even if recovery itself is killed half-way and run again).
    An interruption is not the trial's fault, so a retry that is interrupted in its turn is
    retried once too, but the same parameters run at most :data:`MAX_ATTEMPTS` times: a shape
    that keeps going down with its search (say, one that exhausts the host's memory) is then
    left to the sampler. A retry carries ``retry_of`` (the number of the first trial of the
    chain) and ``attempt`` (2, 3, ...). Returns the numbers of the trials that were failed.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    queued = {
        (trial_attrs(t.user_attrs)["retry_of"], _attempt(t))
        for t in trials
        if "retry_of" in t.user_attrs
    }
    failed = []
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        first, attempt = (
            trial_attrs(trial.user_attrs).get("retry_of", trial.number),
            _attempt(trial),
        )
        # A dequeued retry stopped before it was suggested holds its parameters as fixed_params.
        params = trial.params or trial.system_attrs.get("fixed_params")
        if params and "shape" in params:  # the shape is chosen; its features follow from it
            params = {"shape": params["shape"]}
        if params and attempt < MAX_ATTEMPTS and (first, attempt + 1) not in queued:
            retry = TrialAttrs(retry_of=first, attempt=attempt + 1)
            study.enqueue_trial(params, user_attrs=dict(retry))
        storage = study_storage(study)
        storage.set_trial_user_attr(trial_id(trial), "fail_reason", INTERRUPTED)
        storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
        failed.append(trial.number)
    return failed


def _attempt(trial: optuna.trial.FrozenTrial) -> int:
    """Which run of its parameters a trial is: 1, or 2 for a retry stored without ``attempt``."""
    attrs = trial_attrs(trial.user_attrs)
    return 1 if "retry_of" not in attrs else int(attrs.get("attempt", 2))
