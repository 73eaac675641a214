"""Figures of a run: image grids, loss curves, heatmaps and the HTML report."""
