"""Statistics on arrays, like sklearn.metrics: caret's confusion-matrix statistics, the worst
confusion and the most confident mistakes, calibration, ranking curves, paired comparison.
numpy and scipy only; nothing of reportgen's."""
