"""The recipe of one experiment, one module per stage (see recipe.py for the order)."""
