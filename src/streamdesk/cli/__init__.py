"""The `streamdesk` command line."""
