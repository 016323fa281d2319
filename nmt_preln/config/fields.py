"""What the config modules share: a field's ``--help`` text, and range rules made into an error.

Every config dataclass writes its rules as ``(broken, message)`` pairs in one ``validate``
method; :func:`refuse_first` turns the first broken one into the one-line
:class:`~nmt_preln.errors.UserError` that the console scripts print.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nmt_preln.errors import UserError


def cli_help(text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the one-line ``--help`` text (and argparse extras such as ``const``)."""
    return {"help": text, **extra}


def refuse_first(rules: Iterable[tuple[bool, str]]) -> None:
    """Raise UserError with the message of the first rule whose condition holds.

    Args:
        rules: ``(broken, message)`` pairs, in the order the user should fix them.
    """
    for broken, message in rules:
        if broken:
            raise UserError(message)
