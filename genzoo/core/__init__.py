"""Layer 0: errors, typed options, the registry and plugin hooks, recipes, atomic I/O and image grids."""
