"""Side-by-side benchmarks: every variant runs in the same session, compared as ratios."""
