"""Operations test fixtures: a capture of the JSON log stream."""

import io
import logging
from collections.abc import Iterator

import pytest

from app.observability import configure_logging


@pytest.fixture
def json_log_stream() -> Iterator[io.StringIO]:
    """The app's own logging set-up at INFO, writing to a buffer instead of stderr.

    configure_logging replaces the root handlers, so the previous ones (pytest's capture
    included) are put back afterwards.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO")
    stream = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
