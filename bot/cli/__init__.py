"""The operator's command line (`python -m bot …`, `loaphuong …`): one module a command group.

`main.py` builds the parser from each group's `add_parser` and dispatches; a group module never
imports `main` back. May import every other package: it is the outermost layer beside `bot.app`.
"""

from bot.cli.main import main

__all__ = ["main"]
