"""The engine: suite configs, planning into cells, execution and result files."""
