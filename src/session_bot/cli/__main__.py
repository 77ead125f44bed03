"""`python -m session_bot.cli`: the same as the `session-bot` command."""

from session_bot.cli.main import main

main()
