import logging

from prefect import flow
from prefect.logging.handlers import PrefectConsoleHandler

from lessons_src.logs import client_retries, quiet_console
from lessons_src.runs import flow_run_logs


@flow(log_prints=True)
def chatty() -> None:
    print("a line for the server")


def test_quiet_console_hides_info_but_the_server_still_gets_the_logs(course_server):
    with quiet_console():
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
        assert handlers and all(h.level == logging.WARNING for h in handlers)
        state = chatty(return_state=True)
    assert all(h.level != logging.WARNING for h in handlers)
    assert any("a line for the server" in m for m in flow_run_logs(state, contains="a line for the server"))


def test_client_retries_collects_retry_messages_and_restores_the_logger():
    logger = logging.getLogger("prefect.client")
    level, propagate = logger.level, logger.propagate
    with client_retries() as retried:
        logger.debug("Received response with retryable status code 503. Another attempt will be made in 2s.")
        logger.debug("something else")
    assert retried == ["Received response with retryable status code 503. Another attempt will be made in 2s."]
    assert (logger.level, logger.propagate) == (level, propagate)


def test_client_retries_passes_on_warnings(caplog):
    with caplog.at_level(logging.WARNING), client_retries():
        logging.getLogger("prefect.client").warning("a warning still shows")
    assert "a warning still shows" in caplog.text
