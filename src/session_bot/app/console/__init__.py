"""The organisers' console: accounts, sign-in, audit (use cases; the pages live in web/console)."""
