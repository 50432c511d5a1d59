"""The `polyp-rt` command line: one module per command family, tables and reports; imports the rooms lazily."""
