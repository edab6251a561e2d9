"""The Typer CLI: one small module per command; each parses and calls one library function."""
