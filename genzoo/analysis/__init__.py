"""Layer 5: the compare report, studies, interpolation and style-mixing grids."""
