"""A failed run's reason, as the load retries and the freshness check show it: the root cause
in a person's words, with the API key and the webhook URL's token masked."""

import dagster as dg

from crust_assets.crustdata.redact import SecretScrubber
from crust_assets.defs.loads import run_failure_reason

KEY = "sk-live-0123456789abcdef"
WEBHOOK = "https://hooks.example.com/crust/tok-9876543210fedcba"


class StoreDown(Exception):
    pass


@dg.op
def load_with_secret_in_error() -> None:
    try:
        raise OSError(f"PUT refused for key {KEY} at {WEBHOOK}")
    except OSError as error:
        raise StoreDown("the object store said no") from error


@dg.job
def failing_load() -> None:
    load_with_secret_in_error()


def test_the_reason_is_the_root_cause_with_every_secret_masked() -> None:
    with dg.instance_for_test() as instance:
        result = failing_load.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        reason = run_failure_reason(instance, result.run_id, SecretScrubber(KEY, WEBHOOK))
        assert reason.startswith("OSError: PUT refused for key ")
        assert KEY not in reason and "tok-9876543210fedcba" not in reason
        assert "hooks.example.com" in reason  # the host stays readable
