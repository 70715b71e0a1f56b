"""Layer 4: the compare report, studies, interpolation and style-mixing grids."""
