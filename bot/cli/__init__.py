"""The operator's command line (`python -m bot …`, `loaphuong …`): one module a command group.

`main.py` loads the settings, builds the parser from each group module's `add_parser(subparsers)`
(`assistant`: run/chat/ask, `content`, `audience`: staff/localities/groups, `broadcast`,
`tickets`: tickets/kb, `supervision`) and runs the chosen command; `common.py` holds what the
groups share (declaring commands and actions, a group's own help, opening the database, JSON and
error output). Nothing imports `main` or this package back: groups import `bot.cli.common` only,
and nothing outside `bot.cli` imports it but `bot.__main__` and the `loaphuong` entry point. May
import every other package: it is the outermost layer beside `bot.app`.
"""

from bot.cli.main import main

__all__ = ["main"]
