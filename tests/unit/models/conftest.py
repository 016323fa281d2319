"""Shared settings of the model tests: one CPU thread, a fixed seed."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_fixed_seed() -> Iterator[None]:
    # The test machine's cores are shared; tiny models gain nothing from more threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)
