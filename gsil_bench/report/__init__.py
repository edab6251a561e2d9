"""Reports of a study: loading, objective, table, statistics, rendering, plots, paper numbers."""
