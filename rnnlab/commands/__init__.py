"""One module per command; cli.py parses and calls them. No command module imports another."""
