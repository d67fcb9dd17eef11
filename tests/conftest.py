"""Shared pytest set-up."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase defines `test_session`, a context manager that unittest collects and
    # TensorFlow then skips ("Not a test"); drop it so that a skip always means something.
    items[:] = [item for item in items if item.name != "test_session"]
